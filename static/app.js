/* incus-api-web dashboard. No inline script: texts, URLs and the CSRF token come from data-
   attributes of <body>. Every change goes through the JSON API with the session cookie and the
   X-CSRFToken header; lists are refreshed from server-rendered partials. */
(function () {
  'use strict';

  var body = document.body;
  var config = JSON.parse(body.getAttribute('data-config') || '{}');
  var texts = config.texts || {};
  var urls = config.urls || {};
  var csrfToken = body.getAttribute('data-csrf') || '';
  var busy = 0;

  function t(key, params) {
    var text = texts[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split('{' + name + '}').join(String(params[name]));
    });
    return text;
  }

  function url(key, name, id) {
    return (urls[key] || '').replace('__NAME__', encodeURIComponent(name || '')).replace('__ID__', String(id || ''));
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }

  function toLogin(response) {
    if (response.redirected && new URL(response.url).pathname.indexOf('/login') === 0) {
      window.location.reload();
      return true;
    }
    return false;
  }

  /* One call to the JSON API; always resolves to an object with status and message. */
  function api(method, path, data) {
    var options = {
      method: method,
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json', 'X-CSRFToken': csrfToken }
    };
    if (data) {
      options.body = new URLSearchParams(data);
    }
    busy += 1;
    return fetch(path, options).then(function (response) {
      if (toLogin(response)) { return { status: 'error', message: '' }; }
      if (response.status === 401) {  /* the session ended: the page goes to the login form */
        window.location.reload();
        return { status: 'error', message: '' };
      }
      return response.json().then(function (json) {
        json.httpStatus = response.status;
        return json;
      }, function () {
        return { status: 'error', message: t('unexpected') + ' (HTTP ' + response.status + ')', httpStatus: response.status };
      });
    }, function () {
      return { status: 'error', message: t('network_error') };
    }).finally(function () { busy -= 1; });
  }

  function alertBox(result, extra) {
    var kind = result.status === 'success' ? 'success' : (result.status === 'warning' ? 'warn' : 'error');
    var box = el('div', { 'class': 'alert ' + kind, role: kind === 'error' ? 'alert' : 'status' }, [result.message || '']);
    (extra || []).forEach(function (node) { box.appendChild(document.createTextNode(' ')); box.appendChild(node); });
    return box;
  }

  function notice(result) {
    var box = document.getElementById('notice');
    if (!box) { return; }
    box.className = alertBox(result).className;
    box.textContent = result.message || '';
    box.hidden = !result.message;
    if (result.message) { box.scrollIntoView({ block: 'nearest' }); }
  }

  function showResult(form, result, extra) {
    var area = form.querySelector('[data-result]');
    area.textContent = '';
    area.appendChild(alertBox(result, extra));
  }

  /* Re-render a [data-refresh-url] region from its partial. */
  function refresh(region) {
    return fetch(region.getAttribute('data-refresh-url'), {
      credentials: 'same-origin', headers: { 'Accept': 'text/html' }
    }).then(function (response) {
      if (toLogin(response)) { return; }
      if (response.status === 404) { return; }
      return response.text().then(function (html) {
        if (response.ok) {
          region.innerHTML = html;
          syncActions();
          if (region.hasAttribute('data-list')) { applyListView(region); }
          var stamp = document.querySelector('[data-updated]');
          if (stamp) { stamp.textContent = t('updated', { time: new Date().toLocaleTimeString() }); }
        }
      });
    }, function () { /* offline: keep what is shown */ });
  }

  function refreshAll() {
    return Promise.all(Array.prototype.map.call(document.querySelectorAll('[data-refresh-url]'), refresh));
  }

  /* The container page's buttons follow the state shown in the overview: a button is offered
     only in the statuses of its data-when (none while Incus is unreachable). */
  function syncActions() {
    var holder = document.querySelector('#overview [data-state]');
    if (!holder) { return; }
    var status = holder.getAttribute('data-state');
    document.querySelectorAll('[data-container-actions]').forEach(function (tools) {
      tools.setAttribute('data-state', status);
      tools.querySelectorAll('[data-when]').forEach(function (button) {
        button.hidden = !status || button.getAttribute('data-when').split(' ').indexOf(status) < 0;
      });
    });
  }

  /* The container list: search (name or IPv4) and sort, in the browser over the rendered rows,
     kept across the list's refreshes (the state lives on the region's attributes). */
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

  /* The confirmation dialog: resolves true when the admin confirms. */
  function confirmDialog(title, nodes, okLabel) {
    var dialog = document.getElementById('confirm-dialog');
    dialog.querySelector('.dialog-title').textContent = title;
    var content = dialog.querySelector('.dialog-body');
    content.textContent = '';
    (nodes || []).forEach(function (n) { content.appendChild(n); });
    dialog.querySelector('.dialog-ok').textContent = okLabel || t('confirm');
    dialog.returnValue = '';
    return new Promise(function (resolve) {
      dialog.addEventListener('close', function onClose() {
        dialog.removeEventListener('close', onClose);
        resolve(dialog.returnValue === 'ok');
      });
      dialog.showModal();
      dialog.querySelector('.dialog-buttons .btn').focus();
    });
  }

  function setBusy(button, on) {
    if (on) {
      button.disabled = true;
      button.setAttribute('data-label', button.textContent);
      button.textContent = '';
      button.appendChild(el('span', { 'class': 'spinner', 'aria-hidden': 'true' }));
      button.appendChild(document.createTextNode(t('working')));
    } else {
      button.disabled = false;
      if (button.hasAttribute('data-label')) { button.textContent = button.getAttribute('data-label'); }
    }
  }

  function ports(start, end) {
    return (end && end !== start) ? start + '-' + end : String(start);
  }

  function ruleLabel(r) {
    var width = (r.host_port_end || r.host_port) - r.host_port;
    return ports(r.host_port, r.host_port_end) + '/' + r.protocol + ' → ' + r.container_ip + ':' +
      ports(r.container_port, r.container_port + width);
  }

  /* start / stop / restart / delete */
  function containerAction(button) {
    var name = button.getAttribute('data-name');
    var action = button.getAttribute('data-action');
    var ready = Promise.resolve(true);
    if (action === 'delete') {
      ready = api('GET', url('rules', name)).then(function (answer) {
        var rules = answer.rules || [];
        var nodes = [el('p', {}, [t('delete_body')])];
        if (rules.length) {
          nodes.push(el('p', {}, [t('delete_rules')]));
          nodes.push(el('ul', {}, rules.map(function (r) {
            return el('li', { 'class': 'mono' }, [ruleLabel(r)]);
          })));
        } else {
          nodes.push(el('p', { 'class': 'muted' }, [t('delete_no_rules')]));
        }
        return confirmDialog(t('delete_title', { name: name }), nodes, t('delete'));
      });
    } else if (action === 'suspend') {
      ready = confirmDialog(t('suspend_title', { name: name }), [el('p', {}, [t('suspend_body')])], t('suspend'));
    }
    return ready.then(function (ok) {
      if (!ok) { return; }
      setBusy(button, true);
      notice({ status: 'success', message: '' });
      return api('POST', url('action', name), { action: action }).then(function (result) {
        setBusy(button, false);
        if (action === 'delete' && result.status === 'success' && button.hasAttribute('data-after-delete')) {
          try { sessionStorage.setItem('notice', JSON.stringify(result)); } catch (e) { /* private mode */ }
          window.location.assign(button.getAttribute('data-after-delete'));
          return;
        }
        notice(result);
        return refreshAll();
      });
    });
  }

  function deleteRule(button) {
    var id = button.getAttribute('data-delete-rule');
    var label = button.getAttribute('data-rule-label');
    return confirmDialog(t('delete_rule_title', { rule: label }), [], t('delete')).then(function (ok) {
      if (!ok) { return; }
      setBusy(button, true);
      return api('DELETE', url('delete_rule', '', id)).then(function (result) {
        setBusy(button, false);
        notice(result);
        return refreshAll();
      });
    });
  }

  function copy(button) {
    var field = document.querySelector(button.getAttribute('data-copy'));
    if (!field) { return; }
    var done = function () {
      var label = button.textContent;
      button.textContent = t('copied');
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    var fallback = function () {
      field.select();
      try { document.execCommand('copy'); done(); } catch (e) { /* the text stays selected */ }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener('click', function (event) {
    var target = event.target.closest('button');
    if (!target) { return; }
    if (target.hasAttribute('data-action')) {
      event.preventDefault();
      containerAction(target);
    } else if (target.hasAttribute('data-delete-rule')) {
      event.preventDefault();
      deleteRule(target);
    } else if (target.hasAttribute('data-refresh')) {
      event.preventDefault();
      var region = document.querySelector(target.getAttribute('data-refresh'));
      if (region) { setBusy(target, true); refresh(region).then(function () { setBusy(target, false); }); }
    } else if (target.hasAttribute('data-sort')) {
      event.preventDefault();
      sortBy(target);
    } else if (target.hasAttribute('data-copy')) {
      copy(target);
    } else if (target.hasAttribute('data-delete-image')) {
      event.preventDefault();
      deleteImage(target);
    } else if (target.hasAttribute('data-remove-alias')) {
      event.preventDefault();
      removeAlias(target);
    }
  });

  /* An image picker: a local image, or "another" that shows the remote:alias field. */
  function imagePicker(form) {
    var choice = form.elements.image_choice;
    var other = form.querySelector('.image-other');
    function sync() { other.hidden = choice.value !== ''; }
    choice.addEventListener('change', sync);
    sync();
    return function () { return choice.value || form.elements.image_other.value.trim(); };
  }

  /* Progress text with the seconds counted while Incus works; returns the function that ends it. */
  function progressOf(form, key, params) {
    var progress = form.querySelector('[data-progress]');
    var progressText = form.querySelector('[data-progress-text]');
    var started = Date.now();
    var tick = function () {
      params.seconds = Math.round((Date.now() - started) / 1000);
      progressText.textContent = t(key, params);
    };
    tick();
    var timer = setInterval(tick, 1000);
    progress.hidden = false;
    return function () { clearInterval(timer); progress.hidden = true; };
  }

  /* A generated root password: in this answer only, shown once and kept nowhere. */
  function generatedPassword(result) {
    return el('span', { 'class': 'generated-password' }, [
      t('generated_password') + ' ', el('code', { 'data-generated-password': '' }, [result.password])]);
  }

  /* Reinstall from an image, after a confirmation naming it */
  function setupReinstall(form) {
    var name = form.getAttribute('data-name');
    var imageOf = imagePicker(form);
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var image = imageOf();
      if (!image) {
        showResult(form, { status: 'error', message: t('image_required') });
        return;
      }
      confirmDialog(t('reinstall_title', { name: name, image: image }), [el('p', {}, [t('reinstall_body')])],
                    t('reinstall')).then(function (ok) {
        if (!ok) { return; }
        var button = form.querySelector('button[type=submit]');
        var done = progressOf(form, 'reinstalling', { name: name });
        button.disabled = true;
        form.querySelector('[data-result]').textContent = '';
        var fields = { action: 'reinstall', image: image };
        if (form.elements.password.value) { fields.password = form.elements.password.value; }
        if (form.elements.ssh_key.value.trim()) { fields.ssh_key = form.elements.ssh_key.value; }
        api('POST', url('action', name), fields).then(function (result) {
          done();
          button.disabled = false;
          var extra = [];
          if (result.status === 'success') {
            form.elements.password.value = '';
            form.elements.ssh_key.value = '';
            if (result.password) { extra.push(generatedPassword(result)); }
          }
          showResult(form, result, extra);
          return refreshAll();
        });
      });
    });
  }

  /* The plan fields filled in (the others are not sent: the service keeps or omits them). */
  function planFields(form, fields) {
    form.querySelectorAll('[data-plan] input, [data-plan] select').forEach(function (input) {
      var value = input.value.trim();
      if (value) { fields[input.name] = value; }
    });
    return fields;
  }

  function clearPlan(form) {
    form.querySelectorAll('[data-plan] input, [data-plan] select').forEach(function (input) { input.value = ''; });
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

  /* Change limits: only the fields filled in */
  function setupLimits(form) {
    var name = form.getAttribute('data-name');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var fields = planFields(form, {});
      if (!Object.keys(fields).length) {
        showResult(form, { status: 'error', message: t('limits_required') });
        return;
      }
      var button = form.querySelector('button[type=submit]');
      setBusy(button, true);
      api('POST', url('limits', name), fields).then(function (result) {
        setBusy(button, false);
        if (result.status === 'success') {
          clearPlan(form);
          /* the placeholders show the limits Incus now holds */
          Object.keys(result.limits || {}).forEach(function (key) {
            var input = form.querySelector('[data-plan] input[name="' + key + '"]');
            if (input && result.limits[key] !== null) { input.placeholder = String(result.limits[key]); }
          });
        }
        showResult(form, result);
        return refreshAll();
      });
    });
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

  /* Command runner */
  function setupExec(form) {
    var name = form.getAttribute('data-name');
    var box = form.querySelector('[data-exec-result]');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button[type=submit]');
      setBusy(button, true);
      api('POST', url('exec', name), { command: form.elements.command.value }).then(function (result) {
        setBusy(button, false);
        var code = box.querySelector('[data-exit-code]');
        var message = box.querySelector('[data-exec-message]');
        var stdout = box.querySelector('[data-stdout]');
        var stderr = box.querySelector('[data-stderr]');
        box.hidden = false;
        var ran = typeof result.exit_code === 'number';
        code.hidden = !ran;
        code.textContent = ran ? t('exit_code', { code: result.exit_code }) : '';
        code.className = 'badge ' + (result.exit_code === 0 ? 'ok' : 'bad');
        message.textContent = result.status === 'success' ? '' : (result.message || '');
        message.className = result.status === 'success' ? '' : 'text-error';
        if (result.truncated) { message.textContent += (message.textContent ? ' ' : '') + t('truncated'); }
        stdout.textContent = ran ? (result.stdout || (result.stderr ? '' : t('no_output'))) : '';
        stdout.hidden = !ran || (!result.stdout && !!result.stderr);
        stderr.textContent = result.stderr || '';
        stderr.hidden = !result.stderr;
      });
    });
  }

  /* Add a NAT rule */
  function setupNat(form) {
    var name = form.getAttribute('data-name');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button[type=submit]');
      setBusy(button, true);
      api('POST', url('add_rule', name), {
        host_port: form.elements.host_port.value.trim(),
        container_port: form.elements.container_port.value.trim(),
        protocol: form.elements.protocol.value
      }).then(function (result) {
        setBusy(button, false);
        showResult(form, result);
        if (result.status === 'success') { form.elements.host_port.value = ''; }
        return refreshAll();
      });
    });
  }

  /* Root password of a container (chpasswd through the API); the field is emptied either way */
  function setupPassword(form) {
    var name = form.getAttribute('data-name');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button[type=submit]');
      var field = form.elements.password;
      setBusy(button, true);
      api('POST', url('password', name), { password: field.value }).then(function (result) {
        setBusy(button, false);
        if (result.status === 'success') { field.value = ''; }
        showResult(form, result);
      });
    });
  }

  /* Images: delete, aliases, import from remote:alias with the progress Incus reports */
  function deleteImage(button) {
    var id = button.getAttribute('data-delete-image');
    var label = button.getAttribute('data-image-label');
    return confirmDialog(t('delete_image_title', { image: label }), [el('p', {}, [t('delete_image_body')])], t('delete')).then(function (ok) {
      if (!ok) { return; }
      setBusy(button, true);
      return api('DELETE', url('image_delete', '', id)).then(function (result) {
        setBusy(button, false);
        notice(result);
        return refreshAll();
      });
    });
  }

  function removeAlias(button) {
    var alias = button.getAttribute('data-remove-alias');
    return confirmDialog(t('remove_alias_title', { alias: alias }), [], t('remove')).then(function (ok) {
      if (!ok) { return; }
      button.disabled = true;
      return api('DELETE', url('image_alias_delete', alias)).then(function (result) {
        notice(result);
        return refreshAll();
      });
    });
  }

  /* Alias forms live in the refreshed table: one delegated listener */
  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute('data-alias-form')) { return; }
    event.preventDefault();
    var button = form.querySelector('button[type=submit]');
    setBusy(button, true);
    api('POST', url('image_alias_add', '', form.getAttribute('data-fingerprint')), { alias: form.elements.alias.value.trim() })
      .then(function (result) {
        setBusy(button, false);
        notice(result);
        if (result.status === 'success') { return refreshAll(); }
      });
  });

  function setupImport(form) {
    var button = form.querySelector('button[type=submit]');
    var progress = form.querySelector('[data-progress]');
    var progressText = form.querySelector('[data-progress-text]');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var image = form.elements.image.value.trim();
      if (!image) {
        showResult(form, { status: 'error', message: t('image_required') });
        return;
      }
      var started = Date.now();
      var last = '';
      var tick = function () {
        progressText.textContent = t('importing', { image: image, seconds: Math.round((Date.now() - started) / 1000) }) + (last ? ' — ' + last : '');
      };
      var timer = setInterval(tick, 1000);
      var finish = function (result) {
        clearInterval(timer);
        progress.hidden = true;
        button.disabled = false;
        showResult(form, result);
        if (result.status === 'success') { form.elements.image.value = ''; form.elements.alias.value = ''; }
        return refreshAll();
      };
      var poll = function (operation) {
        setTimeout(function () {
          api('GET', url('image_operation', '', operation)).then(function (result) {
            if (result.state === 'running') {
              last = result.progress || '';
              tick();
              poll(operation);
            } else {
              finish(result);
            }
          });
        }, 1000);
      };
      tick();
      progress.hidden = false;
      button.disabled = true;
      form.querySelector('[data-result]').textContent = '';
      api('POST', urls.image_import, { image: image, alias: form.elements.alias.value.trim() }).then(function (result) {
        if (result.state === 'running' && result.operation) {
          poll(result.operation);
        } else {
          finish(result);
        }
      });
    });
  }

  /* Plain forms that ask first (regenerate the API secret) */
  function setupConfirmForm(form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      confirmDialog(form.getAttribute('data-confirm'), [], t('confirm')).then(function (ok) {
        if (ok) { form.submit(); }
      });
    });
  }

  /* The container page's "Reset traffic": a new period from now, after a confirmation. */
  function setupTrafficReset(button) {
    var name = button.getAttribute('data-name');
    button.addEventListener('click', function () {
      confirmDialog(t('traffic_reset_title', { name: name }), [el('p', {}, [t('traffic_reset_body')])], t('traffic_reset'))
        .then(function (ok) {
          if (!ok) { return; }
          setBusy(button, true);
          return api('POST', url('traffic_reset', name)).then(function (result) {
            setBusy(button, false);
            notice(result);
            return refreshAll();
          });
        });
    });
  }

  function autoRefresh(region) {
    var seconds = parseInt(region.getAttribute('data-auto-refresh'), 10);
    if (!seconds) { return; }
    setInterval(function () {
      var dialog = document.getElementById('confirm-dialog');
      if (document.hidden || busy > 0 || (dialog && dialog.open)) { return; }
      refresh(region);
    }, seconds * 1000);
  }

  document.querySelectorAll('[data-create-form]').forEach(setupCreate);
  document.querySelectorAll('[data-exec-form]').forEach(setupExec);
  document.querySelectorAll('[data-reinstall-form]').forEach(setupReinstall);
  document.querySelectorAll('[data-limits-form]').forEach(setupLimits);
  document.querySelectorAll('[data-traffic-reset]').forEach(setupTrafficReset);
  document.querySelectorAll('[data-nat-form]').forEach(setupNat);
  document.querySelectorAll('[data-password-form]').forEach(setupPassword);
  document.querySelectorAll('[data-import-form]').forEach(setupImport);
  document.querySelectorAll('form[data-confirm]').forEach(setupConfirmForm);
  document.querySelectorAll('[data-auto-refresh]').forEach(autoRefresh);
  document.querySelectorAll('[data-list]').forEach(applyListView);
  document.querySelectorAll('[data-list-filter]').forEach(function (input) {
    var region = document.querySelector(input.getAttribute('data-list-filter'));
    if (region) { input.addEventListener('input', function () { applyListView(region); }); }
  });

  try {
    var saved = sessionStorage.getItem('notice');
    if (saved) {
      sessionStorage.removeItem('notice');
      notice(JSON.parse(saved));
    }
  } catch (e) { /* nothing saved */ }
}());
