/* The container list (containers.html): search and sort, the refresh (by hand and every few
   seconds), the rows' buttons and the create form with the connection details it answers. */
import {
  afterRefresh, autoRefresh, api, el, onButton, refreshAll, setupCopyButtons, setupRefreshButtons, showResult, t,
  url, urls
} from './common.js';
import { clearPlan, deleteRule, imagePicker, planFields, ports, setupContainerActions } from './container-shared.js';

/* Search (name or IPv4) and sort, in the browser over the rendered rows, kept across the list's
   refreshes (the state lives on the region's attributes). */
function ipKey(ip) {
  var parts = (ip || '').split('.');
  if (parts.length !== 4) { return 'z'; }  /* no address: last */
  return parts.map(function (p) { return ('00' + p).slice(-3); }).join('.');
}

function sortValue(row, key) {
  if (key === 'ip') { return ipKey(row.getAttribute('data-ip')); }
  return (row.getAttribute('data-' + key) || '').toLowerCase();
}

function applyListView(region) {
  var table = region.querySelector('table[data-sortable]');
  if (!table) { return; }
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var key = region.getAttribute('data-sort-key') || 'name';
  var dir = region.getAttribute('data-sort-dir') === 'desc' ? -1 : 1;
  rows.sort(function (a, b) {
    var x = sortValue(a, key), y = sortValue(b, key);
    if (x === y) {
      x = a.getAttribute('data-name');
      y = b.getAttribute('data-name');
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return (x < y ? -1 : 1) * dir;
  });
  var fragment = document.createDocumentFragment();
  rows.forEach(function (row) { fragment.appendChild(row); });
  tbody.appendChild(fragment);
  table.querySelectorAll('th[data-sort-key]').forEach(function (th) {
    var current = th.getAttribute('data-sort-key') === key;
    th.setAttribute('aria-sort', current ? (dir === 1 ? 'ascending' : 'descending') : 'none');
  });

  var input = document.querySelector('[data-list-filter="#' + region.id + '"]');
  var query = input ? input.value.trim().toLowerCase() : '';
  var shown = 0;
  rows.forEach(function (row) {
    var match = !query || row.getAttribute('data-name').toLowerCase().indexOf(query) >= 0 ||
      (row.getAttribute('data-ip') || '').indexOf(query) === 0;
    row.hidden = !match;
    if (match) { shown += 1; }
  });
  var counter = region.querySelector('[data-count-shown]');
  if (counter) {
    counter.hidden = !query;
    counter.textContent = query ? '· ' + t('shown', { shown: shown, total: rows.length }) : '';
  }
  var empty = region.querySelector('[data-filter-empty]');
  if (empty) { empty.hidden = !query || shown > 0; }
}

function sortBy(button) {
  var region = button.closest('[data-list]');
  var key = button.getAttribute('data-sort');
  var same = (region.getAttribute('data-sort-key') || 'name') === key;
  var dir = same && region.getAttribute('data-sort-dir') !== 'desc' ? 'desc' : 'asc';
  region.setAttribute('data-sort-key', key);
  region.setAttribute('data-sort-dir', dir);
  applyListView(region);
}

function hostPort(host, port) {
  if (!host) { return String(port); }
  return (host.indexOf(':') >= 0 ? '[' + host + ']' : host) + ':' + port;
}

/* What the customer needs, from the create answer, shown this once with a copy button: the
   SSH address, the generated password, the port range. Kept nowhere. */
function connectionDetails(result) {
  var items = [];
  if (result.ssh) {
    items.push([t('ssh'), hostPort(result.ssh.host, result.ssh.port)]);
    items.push([t('ssh_command'), 'ssh -p ' + result.ssh.port + ' root@' + (result.ssh.host || '')]);
  }
  if (result.password) { items.push([t('password'), result.password, 'data-generated-password']); }
  if (result.ports) {
    items.push([t('ports'), ports(result.ports.start, result.ports.end) + ' (TCP/UDP)']);
  }
  if (!items.length) { return null; }
  var id = 'connection-' + Date.now();
  var text = items.map(function (item) { return item[0] + ': ' + item[1]; }).join('\n');
  var list = el('dl', {}, []);
  items.forEach(function (item) {
    list.appendChild(el('dt', {}, [item[0]]));
    var attrs = { 'data-detail': item[0] };
    if (item[2]) { attrs[item[2]] = ''; }
    list.appendChild(el('dd', attrs, [item[1]]));
  });
  /* the plain text that the copy button copies */
  var area = el('textarea', { id: id, rows: String(items.length), readonly: '', 'class': 'sr-only', tabindex: '-1',
                              'aria-hidden': 'true', 'data-connection-text': '' }, []);
  area.value = text;
  return el('div', { 'class': 'connection', 'data-connection': '' }, [
    el('strong', {}, [t('connection')]), list, area,
    el('div', {}, [el('button', { type: 'button', 'class': 'btn small', 'data-copy': '#' + id }, [t('copy')])]),
    el('small', { 'class': 'muted' }, [t('connection_once')])
  ]);
}

/* Create form: name + image (local alias or remote:alias), progress while Incus works. */
function setupCreate(form) {
  var imageOf = imagePicker(form);
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var name = form.elements.name.value.trim();
    var image = imageOf();
    if (!image) {
      showResult(form, { status: 'error', message: t('image_required') });
      return;
    }
    var button = form.querySelector('button[type=submit]');
    var progress = form.querySelector('[data-progress]');
    var progressText = form.querySelector('[data-progress-text]');
    var started = Date.now();
    var tick = function () {
      progressText.textContent = t('creating', { name: name, seconds: Math.round((Date.now() - started) / 1000) });
    };
    tick();
    var timer = setInterval(tick, 1000);
    progress.hidden = false;
    button.disabled = true;
    form.querySelector('[data-result]').textContent = '';
    var fields = planFields(form, { name: name, image: image });
    if (form.elements.password && form.elements.password.value) { fields.password = form.elements.password.value; }
    if (form.elements.ssh_key && form.elements.ssh_key.value.trim()) { fields.ssh_key = form.elements.ssh_key.value; }
    api('POST', urls.create, fields).then(function (result) {
      clearInterval(timer);
      progress.hidden = true;
      button.disabled = false;
      var extra = [];
      if (result.status === 'success') {
        extra.push(el('a', { href: url('container', result.name || name) }, [t('open') + ' →']));
        /* A generated root password comes in this answer only: shown once, kept nowhere */
        var details = connectionDetails(result);  /* the generated password is among them */
        if (details) { extra.push(details); }
        clearPlan(form);
        form.elements.name.value = '';
        if (form.elements.password) { form.elements.password.value = ''; }
        if (form.elements.ssh_key) { form.elements.ssh_key.value = ''; }
      }
      showResult(form, result, extra);
      return refreshAll();
    });
  });
}

afterRefresh(function (region) {
  if (region.hasAttribute('data-list')) { applyListView(region); }
});
setupContainerActions();
setupRefreshButtons();
setupCopyButtons();  /* the connection details' copy button */
onButton('data-sort', sortBy);
onButton('data-delete-rule', deleteRule);  /* the orphaned NAT rules under the list */

document.querySelectorAll('[data-create-form]').forEach(setupCreate);
document.querySelectorAll('[data-auto-refresh]').forEach(autoRefresh);
document.querySelectorAll('[data-list]').forEach(applyListView);
document.querySelectorAll('[data-list-filter]').forEach(function (input) {
  var region = document.querySelector(input.getAttribute('data-list-filter'));
  if (region) { input.addEventListener('input', function () { applyListView(region); }); }
});
