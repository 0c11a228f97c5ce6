/* The container page (container.html): its buttons follow the state the overview shows, and its
   forms: run a command, root password, limits, reinstall, traffic reset, NAT rules. */
import {
  afterRefresh, api, confirmDialog, el, notice, onButton, refreshAll, sendReinstall, setBusy, setupCopyButtons, showResult, t, url
} from './common.js';
import { clearPlan, deleteRule, imagePicker, planFields, setupContainerActions } from './container-shared.js';

/* The buttons follow the state shown in the overview: a button is offered only in the statuses of
   its data-when (none while Incus is unreachable). */
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
function generatedPassword(password) {
  return el('span', { 'class': 'generated-password' }, [
    t('generated_password') + ' ', el('code', { 'data-generated-password': '' }, [password])]);
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
      var done = progressOf(form, 'reinstalling', { name: name });
      sendReinstall(form, url('action', name), { action: 'reinstall', image: image }, done, generatedPassword);
    });
  });
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

/* "Reset traffic": a new period from now, after a confirmation. */
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

/* The customer card: a one-time link to the customer's panel (shown with a copy button), and
   ending every customer session of the container. */
function customerLink(button) {
  var card = button.closest('[data-customer-card]');
  setBusy(button, true);
  return api('POST', url('customer_link', button.getAttribute('data-name'))).then(function (result) {
    setBusy(button, false);
    var extra = [];
    if (result.status === 'success') {
      var id = 'customer-link-url';
      extra.push(el('span', { 'class': 'inline-field customer-link' }, [
        el('input', { id: id, 'class': 'mono grow', readonly: '', value: new URL(result.url, window.location.href).href,
                      'data-customer-link-url': '', 'aria-label': t('customer_link') }),
        el('button', { type: 'button', 'class': 'btn small', 'data-copy': '#' + id }, [t('copy')])
      ]));
    }
    showResult(card, result, extra);
  });
}

function customerLogout(button) {
  var name = button.getAttribute('data-name');
  var card = button.closest('[data-customer-card]');
  return confirmDialog(t('customer_logout_title', { name: name }), [el('p', {}, [t('customer_logout_body')])],
                       t('customer_logout')).then(function (ok) {
    if (!ok) { return; }
    setBusy(button, true);
    return api('POST', url('customer_logout', name)).then(function (result) {
      setBusy(button, false);
      showResult(card, result);
      return refreshAll();
    });
  });
}

afterRefresh(syncActions);
onButton('data-customer-link', customerLink);
onButton('data-customer-logout', customerLogout);
setupCopyButtons();
setupContainerActions();
onButton('data-delete-rule', deleteRule);

document.querySelectorAll('[data-exec-form]').forEach(setupExec);
document.querySelectorAll('[data-reinstall-form]').forEach(setupReinstall);
document.querySelectorAll('[data-limits-form]').forEach(setupLimits);
document.querySelectorAll('[data-traffic-reset]').forEach(setupTrafficReset);
document.querySelectorAll('[data-nat-form]').forEach(setupNat);
document.querySelectorAll('[data-password-form]').forEach(setupPassword);
