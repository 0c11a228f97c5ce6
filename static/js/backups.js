/* Backups (issue 21): the backups page (templates/backups.html) and the container page's backups
   card (templates/container.html). The page's table is filled from GET /backups (?name= for one
   container) and polled every 2 s while a backup is being written, never otherwise; "Back up now"
   is POST /container/<name>/backup (202: its id at once), a restore (after a dialog: its own name
   or a copy under a new one, ports=auto or not) POST /backups/<id>/restore, a delete (after a
   confirmation) DELETE /backups/<id>. The card backs its container up and follows that one
   backup (GET /backups/<id>) until it is written or failed. The CSRF token comes from <body
   data-csrf> (common.js's api() sends it); texts and URLs from the section's data- attributes.
   No inline script, no HTML built from the server's strings. */
import { api, confirmDialog, confirmThenRun, el, notice, onSubmit, setBusy, showResult, size, t, textsOf, urlsOf } from './common.js';

var POLL_MS = 2000;

function reader(section) {
  return { tx: textsOf(section), url: urlsOf(section) };
}

function parseTime(value) {
  if (!value) { return null; }
  var date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + 'Z');
  return isNaN(date.getTime()) ? null : date;
}

function when(value) {
  var date = parseTime(value);
  return date ? date.toLocaleString() : (value || '—');
}

/* "3 minutes ago" in the page's language, by the browser (no text of ours to translate). */
function age(value) {
  var date = parseTime(value);
  if (!date) { return '—'; }
  var seconds = Math.round((date.getTime() - Date.now()) / 1000);
  var steps = [[60, 'second'], [3600, 'minute'], [86400, 'hour'], [86400 * 30, 'day'], [86400 * 365, 'month']];
  var unit = 'year';
  var divisor = 86400 * 365;
  for (var i = 0; i < steps.length; i += 1) {
    if (Math.abs(seconds) < steps[i][0]) {
      unit = steps[i][1];
      divisor = i === 0 ? 1 : steps[i - 1][0];
      break;
    }
  }
  try {
    var format = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: 'auto' });
    return format.format(Math.round(seconds / divisor), unit);
  } catch (e) {
    return when(value);
  }
}

function stateBadge(r, backup) {
  var kind = { running: 'warn', ok: 'ok', failed: 'bad' }[backup.state] || '';
  var badge = el('span', { 'class': 'badge ' + kind, 'data-state': backup.state }, []);
  if (backup.state === 'running') {
    badge.appendChild(el('span', { 'class': 'spinner small-spinner', 'aria-hidden': 'true' }));
    badge.appendChild(document.createTextNode(' '));
  }
  badge.appendChild(document.createTextNode(r.tx(backup.state)));
  return badge;
}

/* -- the backups page ------------------------------------------------------------------------ */

function setupPage(section) {
  var r = reader(section);
  var name = section.getAttribute('data-name') || '';
  var rows = section.querySelector('[data-backups-rows]');
  var labels = Array.prototype.map.call(section.querySelectorAll('thead th'), function (th) { return th.textContent.trim(); });
  var timer = null;
  var loaded = false;
  var form = document.querySelector('[data-backup-form]');

  function cell(index, attrs, children) {
    return el('td', Object.assign({ 'data-label': labels[index] || '' }, attrs || {}), children);
  }

  function stored(backup) {
    var parts = [];
    /* a failed one's file is removed whatever its row says; one being written is not stored yet */
    (backup.state === 'ok' ? backup.stored || [] : []).forEach(function (where) {
      parts.push(el('span', { 'class': 'badge', 'data-stored': where }, [r.tx(where)]));
    });
    if (backup.s3_state === 'uploading') {
      parts.push(el('span', { 'class': 'badge warn', 'data-stored': 's3-uploading' }, [r.tx('s3_uploading')]));
    } else if (backup.s3_state === 'failed') {
      parts.push(el('span', { 'class': 'badge bad', 'data-stored': 's3-failed', title: backup.s3_error || '' }, [r.tx('s3_failed')]));
    }
    if (!parts.length) { parts.push(backup.state === 'ok' ? r.tx('nowhere') : '—'); }
    var out = [];
    parts.forEach(function (part, i) { if (i) { out.push(' '); } out.push(part); });
    if (backup.s3_state === 'failed' && backup.s3_error) {
      out.push(el('div', { 'class': 'text-bad small break' }, [backup.s3_error]));
    }
    return out;
  }

  function row(backup) {
    var state = [stateBadge(r, backup)];
    if (backup.state === 'failed' && backup.error) {
      state.push(el('div', { 'class': 'backup-error text-bad small break', 'data-backup-error': '' }, [backup.error]));
    }
    var actions = [];
    if (backup.state === 'ok') {
      actions.push(el('button', { type: 'button', 'class': 'btn small', 'data-restore-backup': String(backup.id) }, [r.tx('restore')]));
      actions.push(' ');
    }
    if (backup.state !== 'running') {
      actions.push(el('button', { type: 'button', 'class': 'btn small danger', 'data-delete-backup': String(backup.id) }, [r.tx('delete')]));
    }
    return el('tr', { 'data-backup': String(backup.id), 'data-container': backup.container, 'class': 'backup-' + backup.state }, [
      cell(0, { 'class': 'name' }, [el('a', { href: r.url('container', backup.container), 'class': 'mono' }, [backup.container])]),
      cell(1, { 'class': 'nowrap' }, [when(backup.created_at)]),
      cell(2, { 'class': 'nowrap', title: when(backup.finished_at || backup.created_at) }, [age(backup.created_at)]),
      cell(3, { 'class': 'num nowrap', title: backup.sha256 ? 'SHA-256 ' + backup.sha256 : '' }, [size(backup.size)]),
      cell(4, { 'class': 'state' }, state),
      cell(5, {}, stored(backup)),
      cell(6, { 'class': 'nowrap' }, [r.tx('trigger_' + backup.trigger)]),
      el('td', { 'class': 'actions' }, actions)
    ]);
  }

  function render(answer) {
    loaded = true;
    rows.textContent = '';
    answer.backups.forEach(function (backup) { rows.appendChild(row(backup)); });
    section.querySelector('[data-backups-table]').hidden = answer.backups.length === 0;
    section.querySelector('[data-backups-empty]').hidden = answer.backups.length > 0;
    section.querySelector('[data-backups-status]').textContent = answer.backups.length ? r.tx('count', { count: answer.backups.length }) : '';
    var stamp = document.querySelector('[data-updated]');
    if (stamp) { stamp.textContent = t('updated', { time: new Date().toLocaleTimeString() }); }
  }

  /* The rows again; polled every 2 s while any backup is running, and not otherwise. */
  function load() {
    if (timer) { clearTimeout(timer); timer = null; }
    var path = r.url('list') + (name ? '?name=' + encodeURIComponent(name) : '');
    return api('GET', path).then(function (answer) {
      if (answer.status === 'success' && Array.isArray(answer.backups)) {
        render(answer);
        if (answer.backups.some(function (b) { return b.state === 'running'; })) {
          timer = setTimeout(load, POLL_MS);
        }
      } else if (!loaded) {
        section.querySelector('[data-backups-status]').textContent = answer.message || r.tx('load_failed');
      }
      return answer;
    });
  }

  function restoreDialog(backup) {
    var own = el('input', { type: 'radio', name: 'restore-as', value: 'own', checked: '' });
    var copy = el('input', { type: 'radio', name: 'restore-as', value: 'copy' });
    var newName = el('input', { name: 'restore-name', maxlength: '63', autocomplete: 'off', spellcheck: 'false',
      placeholder: backup.container + '-copy', 'aria-label': r.tx('new_name') });
    var auto = el('input', { type: 'checkbox', name: 'ports-auto', value: 'auto' });
    var nameField = el('label', { 'class': 'restore-name', hidden: '' }, [r.tx('new_name'), newName]);
    var pick = function () { nameField.hidden = !copy.checked; if (copy.checked) { newName.focus(); } };
    own.addEventListener('change', pick);
    copy.addEventListener('change', pick);
    var nodes = [
      el('p', {}, [r.tx('restore_body')]),
      el('fieldset', { 'class': 'choices' }, [
        el('label', { 'class': 'choice' }, [own, el('span', {}, [r.tx('restore_own', { name: backup.container })])]),
        el('label', { 'class': 'choice' }, [copy, el('span', {}, [r.tx('restore_copy')])]),
        nameField,
        el('label', { 'class': 'choice' }, [auto, el('span', {}, [r.tx('ports_auto')])])
      ])
    ];
    return confirmDialog(r.tx('restore_title', { id: backup.id, name: backup.container }), nodes, r.tx('restore')).then(function (ok) {
      if (!ok) { return null; }
      var data = {};
      if (copy.checked) { data.name = newName.value.trim(); }
      if (auto.checked) { data.ports = 'auto'; }
      return data;
    });
  }

  function portsLine(rules) {
    return (rules || []).map(function (rule) {
      var host = rule.host_port_end && rule.host_port_end !== rule.host_port ? rule.host_port + '-' + rule.host_port_end : String(rule.host_port);
      return host + '→' + rule.container_port + '/' + rule.protocol;
    }).join(', ');
  }

  function restore(button, backup) {
    restoreDialog(backup).then(function (data) {
      if (!data) { return; }
      if (data.name === '') {
        notice({ status: 'error', message: r.tx('name_required') });
        return;
      }
      setBusy(button, true);
      api('POST', r.url('restore', '', backup.id), data).then(function (result) {
        setBusy(button, false);
        var extra = '';
        if (result.status !== 'success' && Array.isArray(result.ports) && result.ports.length) {
          extra = r.tx('taken_ports', { ports: result.ports.join(', ') });
        } else if (result.status === 'success' && result.container && (result.container.nat_rules || []).length) {
          extra = r.tx('new_ports', { ports: portsLine(result.container.nat_rules) });
        }
        notice(Object.assign({}, result, { message: (result.message || '') + (extra ? ' ' + extra : '') }));
        var box = document.getElementById('notice');
        if (box) { box.setAttribute('data-ports', Array.isArray(result.ports) ? result.ports.join(',') : ''); }
        return load();
      });
    });
  }

  function remove(button, backup) {
    var question = { title: r.tx('delete_title', { id: backup.id, name: backup.container }), body: r.tx('delete_body'), ok: r.tx('delete') };
    confirmThenRun(button, question, function () { return api('DELETE', r.url('delete', '', backup.id)); }, load);
  }

  section.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-restore-backup], button[data-delete-backup]');
    if (!button) { return; }
    event.preventDefault();
    var tr = button.closest('tr');
    var backup = { id: parseInt(tr.getAttribute('data-backup'), 10), container: tr.getAttribute('data-container') };
    if (button.hasAttribute('data-restore-backup')) { restore(button, backup); } else { remove(button, backup); }
  });

  document.querySelectorAll('[data-backups-reload]').forEach(function (button) {
    button.addEventListener('click', function () {
      setBusy(button, true);
      load().then(function () { setBusy(button, false); });
    });
  });

  if (form) {
    onSubmit(form, function () {
      var target = (form.elements.name.value || '').trim();
      return target ? api('POST', r.url('create', target)) : null;
    }, load);
  }

  load();
}

/* -- the container page's card --------------------------------------------------------------- */

function setupCard(card) {
  var r = reader(card);
  var name = card.getAttribute('data-name');
  var button = card.querySelector('[data-backup-now]');
  var state = card.querySelector('[data-backup-state]');

  function show(backup) {
    state.textContent = '';
    state.appendChild(stateBadge(r, backup));
    state.appendChild(document.createTextNode(' '));
    var key = { running: 'started', ok: 'done', failed: 'broke' }[backup.state] || 'started';
    state.appendChild(document.createTextNode(r.tx(key, { id: backup.id, name: backup.container, size: size(backup.size),
      error: backup.error || '?' })));
    state.hidden = false;
  }

  function follow(id) {
    setTimeout(function () {
      api('GET', r.url('one', '', id)).then(function (answer) {
        if (answer.status !== 'success' || !answer.backup) { return; }
        show(answer.backup);
        if (answer.backup.state === 'running') { follow(id); } else { button.disabled = false; }
      });
    }, POLL_MS);
  }

  button.addEventListener('click', function (event) {
    event.preventDefault();
    setBusy(button, true);
    api('POST', r.url('create', name)).then(function (result) {
      setBusy(button, false);
      if (result.status !== 'success' || !result.backup) {
        showResult(card, result);
        return;
      }
      card.querySelector('[data-result]').textContent = '';
      if (result.backup) {
        show(result.backup);
        if (result.backup.state === 'running') { button.disabled = true; follow(result.backup.id); }
      }
    });
  });
}

document.querySelectorAll('[data-backups-page]').forEach(setupPage);
document.querySelectorAll('[data-backup-card]').forEach(setupCard);
