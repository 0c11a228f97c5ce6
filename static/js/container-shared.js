/* What the container list (containers.js) and the container page (container.js) share: the
   start/stop/restart/suspend/unsuspend/delete buttons, a NAT rule's delete button (the container's
   rules on its page, the orphaned rules on the list), the image picker and the plan fields. */
import { api, confirmDialog, el, notice, onButton, refreshAll, setBusy, t, url } from './common.js';

export function ports(start, end) {
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

/* A NAT rule's delete button (data-delete-rule: its id; data-rule-label: what the dialog names) */
export function deleteRule(button) {
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

/* [data-action] buttons, also those of a refreshed list */
export function setupContainerActions() {
  onButton('data-action', containerAction);
}

/* An image picker: a local image, or "another" that shows the remote:alias field. */
export function imagePicker(form) {
  var choice = form.elements.image_choice;
  var other = form.querySelector('.image-other');
  function sync() { other.hidden = choice.value !== ''; }
  choice.addEventListener('change', sync);
  sync();
  return function () { return choice.value || form.elements.image_other.value.trim(); };
}

/* The plan fields filled in (the others are not sent: the service keeps or omits them). */
export function planFields(form, fields) {
  form.querySelectorAll('[data-plan] input, [data-plan] select').forEach(function (input) {
    var value = input.value.trim();
    if (value) { fields[input.name] = value; }
  });
  return fields;
}

export function clearPlan(form) {
  form.querySelectorAll('[data-plan] input, [data-plan] select').forEach(function (input) { input.value = ''; });
}
