/* The customer's panel (customer.html): start/stop/restart, root's password, root's SSH keys,
   reinstall, each a POST to /customer/* with the CSRF header (common.js's api()); the overview
   refreshes itself and the buttons follow the state it shows; the CPU meter is the CPU time
   between two refreshes. The console in the page is static/console.js (opened on demand). */
import {
  afterRefresh, autoRefresh, api, confirmDialog, el, notice, onButton, refresh, refreshAll, setBusy, setupCopyButtons,
  sendReinstall, showResult, t, textsOf
} from './common.js';

var root = document.querySelector('[data-customer]');
var urls = JSON.parse(root.getAttribute('data-urls'));
var own = textsOf(root);

/* What follows the state the overview shows: buttons and cards offered in the statuses of their
   data-panel-when, and the forms that change the container (hidden while it is suspended). */
function syncState() {
  var holder = document.querySelector('#overview [data-state]');
  if (!holder) { return; }
  var state = holder.getAttribute('data-state');
  document.querySelectorAll('[data-panel-when]').forEach(function (node) {
    var offered = !!state && node.getAttribute('data-panel-when').split(' ').indexOf(state) >= 0;
    if (!offered && node.querySelector('[data-console]:not([hidden])')) { return; }  /* an open console shows how it ended */
    node.hidden = !offered;
  });
  document.querySelectorAll('[data-unless-suspended]').forEach(function (node) {
    node.hidden = state === 'Suspended';
  });
}

/* CPU use between two samples of the CPU time (ns) Incus reported, against the plan's cores (one
   when it has no CPU limit). Until a new pair can be compared (the first sample, a restart), the
   last figure stays shown. */
var lastCpu = null;
var lastPct = null;
function cpuMeter() {
  var card = document.querySelector('#overview [data-cpu-ns]');
  if (!card) { lastCpu = null; lastPct = null; return; }
  var sample = { ns: parseFloat(card.getAttribute('data-cpu-ns')), at: parseFloat(card.getAttribute('data-sampled-at')) };
  var cores = parseFloat(card.getAttribute('data-cpu-cores')) || 1;
  var previous = lastCpu;
  lastCpu = sample;
  if (previous && sample.at > previous.at && sample.ns >= previous.ns) {
    lastPct = Math.min(100, Math.max(0, (sample.ns - previous.ns) / ((sample.at - previous.at) * 1e9 * cores) * 100));
  }
  if (lastPct === null) { return; }
  var used = card.querySelector('[data-cpu-used]');
  var meter = card.querySelector('[data-cpu-meter]');
  used.textContent = (lastPct < 10 ? lastPct.toFixed(1) : lastPct.toFixed(0)) + ' % / ';
  used.hidden = false;
  meter.value = lastPct;
  meter.textContent = lastPct.toFixed(0) + '%';
  meter.hidden = false;
}

/* A generated password: in this answer only, shown once with a copy button. */
function generatedPassword(password) {
  var id = 'generated-' + Math.random().toString(36).slice(2);
  return el('span', { 'class': 'generated-password' }, [
    t('generated_password') + ' ',
    el('span', { 'class': 'inline-field' }, [
      el('input', { id: id, 'class': 'mono grow', readonly: '', value: password, 'data-generated-password': '',
                    'aria-label': t('password') }),
      el('button', { type: 'button', 'class': 'btn small', 'data-copy': '#' + id }, [t('copy')])
    ]),
    el('small', { 'class': 'muted' }, [own('shown_once')])
  ]);
}

function power(button) {
  var action = button.getAttribute('data-power');
  var ready = action === 'stop'
    ? confirmDialog(own('stop_title'), [el('p', {}, [own('stop_body')])], own('stop'))
    : Promise.resolve(true);
  return ready.then(function (ok) {
    if (!ok) { return; }
    setBusy(button, true);
    notice({ status: 'success', message: '' });
    return api('POST', urls.power, { action: action }).then(function (result) {
      setBusy(button, false);
      notice(result);
      return refreshAll();
    });
  });
}

function setupPassword(form) {
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var button = form.querySelector('button[type=submit]');
    var field = form.elements.password;
    var fields = field.value ? { password: field.value } : {};
    setBusy(button, true);
    api('POST', urls.password, fields).then(function (result) {
      setBusy(button, false);
      var extra = [];
      if (result.status === 'success') {
        field.value = '';
        if (result.password) { extra.push(generatedPassword(result.password)); }
      }
      showResult(form, result, extra);
    });
  });
}

function setupSshKey(form) {
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var field = form.elements.ssh_key;
    if (!field.value.trim()) {
      showResult(form, { status: 'error', message: own('ssh_key_required') });
      return;
    }
    var button = form.querySelector('button[type=submit]');
    setBusy(button, true);
    api('POST', urls.ssh_key, { ssh_key: field.value }).then(function (result) {
      setBusy(button, false);
      showResult(form, result);
    });
  });
}

function progressOf(form) {
  var progress = form.querySelector('[data-progress]');
  var text = form.querySelector('[data-progress-text]');
  var name = document.querySelector('[data-customer] h1 .mono').textContent;
  var started = Date.now();
  var tick = function () {
    text.textContent = t('reinstalling', { name: name, seconds: Math.round((Date.now() - started) / 1000) });
  };
  tick();
  var timer = setInterval(tick, 1000);
  progress.hidden = false;
  return function () { clearInterval(timer); progress.hidden = true; };
}

function setupReinstall(form) {
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var image = form.elements.image.value;
    confirmDialog(own('reinstall_title', { image: image }), [el('p', {}, [t('reinstall_body')])], t('reinstall'))
      .then(function (ok) {
        if (!ok) { return; }
        sendReinstall(form, urls.reinstall, { image: image }, progressOf(form), generatedPassword);
      });
  });
}

afterRefresh(function (region) {
  if (region.id === 'overview') { syncState(); cpuMeter(); }
});
onButton('data-power', power);
setupCopyButtons();
document.querySelectorAll('[data-password-form]').forEach(setupPassword);
document.querySelectorAll('[data-ssh-key-form]').forEach(setupSshKey);
document.querySelectorAll('[data-reinstall-form]').forEach(setupReinstall);
document.querySelectorAll('#overview[data-auto-refresh], #traffic [data-auto-refresh]').forEach(autoRefresh);
syncState();
cpuMeter();
/* A first CPU figure soon after the page opens, not only at the first periodic refresh. */
setTimeout(function () { refresh(document.getElementById('overview')); }, 2000);
