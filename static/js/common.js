/* incus-api-web dashboard: what every page shares. Loaded by base.html on every page; each
   page's own module (static/js/<page>.js, loaded by its template) imports what it needs from here.
   No inline script: texts, URLs and the CSRF token come from data- attributes of <body>. Every
   change goes through the JSON API with the session cookie and the X-CSRFToken header; lists are
   refreshed from server-rendered partials. */

var body = document.body;
var config = JSON.parse(body.getAttribute('data-config') || '{}');
var texts = config.texts || {};
var csrfToken = body.getAttribute('data-csrf') || '';
var busy = 0;
var refreshHooks = [];

export var urls = config.urls || {};

/* A text with each "{name}" filled from params. */
function fill(text, params) {
  Object.keys(params || {}).forEach(function (name) {
    text = text.split('{' + name + '}').join(String(params[name]));
  });
  return text;
}

/* A URL template with __NAME__ (a container) and __ID__ filled. */
function fillUrl(template, name, id) {
  return (template || '').replace('__NAME__', encodeURIComponent(name || '')).replace('__ID__', String(id || ''));
}

export function t(key, params) {
  return fill(texts[key] || key, params);
}

export function url(key, name, id) {
  return fillUrl(urls[key], name, id);
}

/** t() over an element's own texts: the JSON of its data-texts (or `attribute`). */
export function textsOf(element, attribute) {
  var own = element ? JSON.parse(element.getAttribute(attribute || 'data-texts') || '{}') : {};
  return function (key, params) { return fill(own[key] || key, params); };
}

/** url() over an element's own URLs: the JSON of its data-urls. */
export function urlsOf(element) {
  var own = element ? JSON.parse(element.getAttribute('data-urls') || '{}') : {};
  return function (key, name, id) { return fillUrl(own[key], name, id); };
}

/** Bytes as a person reads them (1024-based units); '—' for none. */
export function size(bytes) {
  if (bytes === null || bytes === undefined) { return '—'; }
  var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  var value = bytes;
  var unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return (unit ? value.toFixed(1) : String(value)) + ' ' + units[unit];
}

export function el(tag, attrs, children) {
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

/* Whether a call to the API is under way (the auto-refresh waits for it). */
export function isBusy() {
  return busy > 0;
}

/* One call to the JSON API; always resolves to an object with status and message. */
export function api(method, path, data) {
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

/* The page's #notice line (base.html), for the outcome of a button. */
export function notice(result) {
  var box = document.getElementById('notice');
  if (!box) { return; }
  box.className = alertBox(result).className;
  box.textContent = result.message || '';
  box.hidden = !result.message;
  if (result.message) { box.scrollIntoView({ block: 'nearest' }); }
}

/* A form's outcome, in its [data-result] area. */
export function showResult(form, result, extra) {
  var area = form.querySelector('[data-result]');
  area.textContent = '';
  area.appendChild(alertBox(result, extra));
}

/* What a page does after a region was re-rendered: fn(region). */
export function afterRefresh(fn) {
  refreshHooks.push(fn);
}

/* Re-render a [data-refresh-url] region from its partial. */
export function refresh(region) {
  return fetch(region.getAttribute('data-refresh-url'), {
    credentials: 'same-origin', headers: { 'Accept': 'text/html' }
  }).then(function (response) {
    if (toLogin(response)) { return; }
    if (response.status === 404) { return; }
    return response.text().then(function (html) {
      if (response.ok) {
        region.innerHTML = html;
        refreshHooks.forEach(function (fn) { fn(region); });
        var stamp = document.querySelector('[data-updated]');
        if (stamp) { stamp.textContent = t('updated', { time: new Date().toLocaleTimeString() }); }
      }
    });
  }, function () { /* offline: keep what is shown */ });
}

/* A region refreshes itself every data-auto-refresh seconds, unless the tab is hidden, a call is
   under way or the confirmation dialog is open. */
export function autoRefresh(region) {
  var seconds = parseInt(region.getAttribute('data-auto-refresh'), 10);
  if (!seconds) { return; }
  setInterval(function () {
    var dialog = document.getElementById('confirm-dialog');
    if (document.hidden || isBusy() || (dialog && dialog.open)) { return; }
    refresh(region);
  }, seconds * 1000);
}

export function refreshAll() {
  return Promise.all(Array.prototype.map.call(document.querySelectorAll('[data-refresh-url]'), refresh));
}

/* The confirmation dialog (base.html): resolves true when the admin confirms. */
export function confirmDialog(title, nodes, okLabel) {
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

/* A change behind a question: the dialog (`question`: title, body, ok), then, once confirmed, act()
   (a promise of the API's answer) with the button busy, its answer in the notice, and reload(). */
export function confirmThenRun(button, question, act, reload) {
  return confirmDialog(question.title, [el('p', {}, [question.body])], question.ok).then(function (ok) {
    if (!ok) { return null; }
    setBusy(button, true);
    return act().then(function (result) {
      setBusy(button, false);
      notice(result);
      return reload();
    });
  });
}

/* A form sent through the API: on submit, send() (a promise of the answer; nothing: nothing is
   sent) with its submit button busy, then reload() and the answer shown under the form. */
export function onSubmit(form, send, reload) {
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var sent = send();
    if (!sent) { return; }
    var button = form.querySelector('button[type=submit]');
    setBusy(button, true);
    sent.then(function (result) {
      setBusy(button, false);
      return reload().then(function () { showResult(form, result); });
    });
  });
}

/* A confirmed reinstall (the admin's container page and the customer's panel): `fields` and the
   form's password and SSH key, those filled, POSTed to `path` with the submit button off; done()
   ends the form's progress line. On success the credential fields are emptied and a generated
   password is shown as shownPassword(password) makes it; then every region is refreshed. */
export function sendReinstall(form, path, fields, done, shownPassword) {
  var button = form.querySelector('button[type=submit]');
  button.disabled = true;
  form.querySelector('[data-result]').textContent = '';
  if (form.elements.password.value) { fields.password = form.elements.password.value; }
  if (form.elements.ssh_key.value.trim()) { fields.ssh_key = form.elements.ssh_key.value; }
  return api('POST', path, fields).then(function (result) {
    done();
    button.disabled = false;
    var extra = [];
    if (result.status === 'success') {
      form.elements.password.value = '';
      form.elements.ssh_key.value = '';
      if (result.password) { extra.push(shownPassword(result.password)); }
    }
    showResult(form, result, extra);
    return refreshAll();
  });
}

export function setBusy(button, on) {
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

/* A click on a button carrying `attribute` (also one rendered later, e.g. in a refreshed list):
   its default is prevented and handler(button) runs. */
export function onButton(attribute, handler) {
  document.addEventListener('click', function (event) {
    var target = event.target.closest('button');
    if (!target || !target.hasAttribute(attribute)) { return; }
    event.preventDefault();
    handler(target);
  });
}

/* [data-refresh="#region"] buttons: re-render that region now. */
export function setupRefreshButtons() {
  onButton('data-refresh', function (target) {
    var region = document.querySelector(target.getAttribute('data-refresh'));
    if (region) { setBusy(target, true); refresh(region).then(function () { setBusy(target, false); }); }
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

/* [data-copy="#field"] buttons (also ones added later): copy that field's text. */
export function setupCopyButtons() {
  document.addEventListener('click', function (event) {
    var target = event.target.closest('button');
    if (target && target.hasAttribute('data-copy')) { copy(target); }
  });
}

/* A notice saved before the page changed (a container deleted from its page) is shown here. */
try {
  var saved = sessionStorage.getItem('notice');
  if (saved) {
    sessionStorage.removeItem('notice');
    notice(JSON.parse(saved));
  }
} catch (e) { /* nothing saved */ }
