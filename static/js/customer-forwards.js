/* The customer's forwards (templates/_customer_forwards.html): the rules of their port block and
   SSH port from GET /customer/forwards, a form that points a port of the block at a port of the
   container (POST), a delete button per rule of the block (DELETE, after a confirmation). The
   CSRF token comes from <body data-csrf> (common.js's api() sends it); texts and URLs from the
   section's data- attributes. No inline script, no HTML built from the server's strings. */
import { api, confirmThenRun, el, onSubmit, textsOf } from './common.js';

var section = document.querySelector('[data-customer-forwards]');
var tx = textsOf(section);
var current = null;  /* the last answer of GET /customer/forwards */

function part(selector) {
  return section.querySelector(selector);
}

function portsText(start, end) {
  return start === end ? String(start) : start + '-' + end;
}

/* What the rule is called in the table and the dialog: "203.0.113.7:20001/tcp". */
function publicText(rule) {
  return (rule.public || portsText(rule.host_port, rule.host_port_end)) + '/' + rule.protocol;
}

function row(rule) {
  var target = tx('to_port', { port: portsText(rule.container_port, rule.container_port_end) }) + '/' + rule.protocol;
  var action = el('td', { 'class': 'actions' });
  if (rule.editable) {
    action.appendChild(el('button', {
      type: 'button', 'class': 'btn small danger', 'data-delete-forward': String(rule.id),
      'data-forward-label': publicText(rule)
    }, [tx('delete')]));
  } else {
    action.appendChild(el('span', { 'class': 'badge' }, [tx(rule.kind === 'ssh' ? 'kind_ssh' : 'kind_provider')]));
  }
  return el('tr', { 'data-forward-id': String(rule.id), 'data-kind': rule.kind }, [
    el('td', { 'class': 'mono', 'data-public': '' }, [publicText(rule)]),
    el('td', { 'class': 'mono' }, [target]),
    action
  ]);
}

/* The host ports the form offers: those of the block that no rule of the protocol forwards. */
function fillHostPorts() {
  var form = part('[data-forward-form]');
  var select = form.elements.host_port;
  var block = current && current.port_block;
  var chosen = select.value;
  select.textContent = '';
  if (!block) { return; }
  var free = block.free[form.elements.protocol.value] || [];
  free.forEach(function (port) {
    select.appendChild(el('option', { value: String(port) }, [String(port)]));
  });
  if (free.indexOf(Number(chosen)) >= 0) { select.value = chosen; }
  var none = free.length === 0;
  if (none) {
    select.appendChild(el('option', { value: '', disabled: '' }, [tx('none_free', { protocol: form.elements.protocol.value })]));
  }
  select.disabled = none;
  form.querySelector('button[type=submit]').disabled = none;
}

function render(answer) {
  current = answer;
  var block = answer.port_block;
  var line = part('[data-forwards-block]');
  var sentences = [block ? tx('block', { start: block.start, end: block.end, count: block.count }) : tx('no_block')];
  if (!answer.public_host) { sentences.push(tx('no_public_host')); }
  line.textContent = sentences.join(' ');

  var rows = part('[data-forwards-rows]');
  rows.textContent = '';
  answer.forwards.forEach(function (rule) { rows.appendChild(row(rule)); });
  part('[data-forwards-table]').hidden = answer.forwards.length === 0;
  var empty = part('[data-forwards-empty]');
  empty.textContent = tx('empty');
  empty.hidden = answer.forwards.length > 0;

  part('[data-forward-form]').hidden = !block;
  fillHostPorts();
}

function load() {
  return api('GET', section.getAttribute('data-url')).then(function (answer) {
    if (answer.status === 'success' && Array.isArray(answer.forwards)) {
      render(answer);
    } else if (!current) {
      part('[data-forwards-block]').textContent = answer.message || tx('load_failed');
    }
    return answer;
  });
}

function setupForm() {
  var form = part('[data-forward-form]');
  form.elements.protocol.addEventListener('change', fillHostPorts);
  onSubmit(form, function () {
    return api('POST', section.getAttribute('data-url'), {
      host_port: form.elements.host_port.value,
      container_port: form.elements.container_port.value.trim(),
      protocol: form.elements.protocol.value
    }).then(function (result) {
      if (result.status === 'success') { form.elements.container_port.value = ''; }
      return result;
    });
  }, load);
}

function setupDelete() {
  section.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-delete-forward]');
    if (!button) { return; }
    event.preventDefault();
    var id = button.getAttribute('data-delete-forward');
    var label = button.getAttribute('data-forward-label');
    confirmThenRun(button, { title: tx('delete_title', { rule: label }), body: tx('delete_body'), ok: tx('delete') }, function () {
      return api('DELETE', section.getAttribute('data-delete-url').replace('__ID__', encodeURIComponent(id)));
    }, load);
  });
}

if (section) {
  setupForm();
  setupDelete();
  load();
}
