/* A container's snapshots (templates/_snapshots.html), on the admin's container page and in the
   customer's panel: the list from the section's list URL (GET), a form that takes one (POST to
   the same URL), a restore and a delete button per snapshot (after a confirmation). The CSRF
   token comes from <body data-csrf> (common.js's api() sends it); texts and URLs from the
   section's data- attributes. No inline script, no HTML built from the server's strings. */
import { api, confirmThenRun, el, onSubmit, size, textsOf } from './common.js';

var section = document.querySelector('[data-snapshots]');
var tx = textsOf(section);
var urls = section ? JSON.parse(section.getAttribute('data-urls') || '{}') : {};
var loaded = false;

function part(selector) {
  return section.querySelector(selector);
}

function when(value) {
  if (!value) { return tx('never'); }
  var date = new Date(value);
  return isNaN(date.getTime()) ? value : date.toLocaleString();
}

function snapshotUrl(key, name) {
  return (urls[key] || '').replace('__SNAPSHOT__', encodeURIComponent(name));
}

function row(snapshot) {
  var label = [snapshot.name];
  if (snapshot.scheduled) {
    label.push(' ');
    label.push(el('span', { 'class': 'badge' }, [tx('scheduled')]));
  }
  return el('tr', { 'data-snapshot': snapshot.name }, [
    el('td', { 'class': 'mono' }, label),
    el('td', {}, [when(snapshot.created_at)]),
    el('td', {}, [snapshot.expires_at ? when(snapshot.expires_at) : tx('never')]),
    el('td', {}, [size(snapshot.size)]),
    el('td', { 'class': 'actions' }, [
      el('button', { type: 'button', 'class': 'btn small', 'data-restore-snapshot': snapshot.name }, [tx('restore')]),
      ' ',
      el('button', { type: 'button', 'class': 'btn small danger', 'data-delete-snapshot': snapshot.name }, [tx('delete')])
    ])
  ]);
}

function render(answer) {
  loaded = true;
  var plan = answer.plan || { snapshots: 0 };
  var taken = answer.snapshots.filter(function (s) { return !s.scheduled; }).length;
  var sentences = [plan.snapshots ? tx('plan', { taken: taken, allowed: plan.snapshots }) : tx('none_allowed')];
  if (plan.snapshot_schedule) {
    sentences.push(plan.snapshot_keep ? tx('schedule', { schedule: plan.snapshot_schedule, keep: plan.snapshot_keep })
      : tx('schedule_forever', { schedule: plan.snapshot_schedule }));
  }
  part('[data-snapshots-plan]').textContent = sentences.join(' ');
  var rows = part('[data-snapshots-rows]');
  rows.textContent = '';
  answer.snapshots.slice().reverse().forEach(function (snapshot) { rows.appendChild(row(snapshot)); });
  part('[data-snapshots-table]').hidden = answer.snapshots.length === 0;
  var empty = part('[data-snapshots-empty]');
  empty.textContent = tx('empty');
  empty.hidden = answer.snapshots.length > 0;
  var form = part('[data-snapshot-form]');
  form.hidden = !plan.snapshots;
  form.querySelector('button[type=submit]').disabled = taken >= plan.snapshots;
}

function load() {
  return api('GET', urls.list).then(function (answer) {
    if (answer.status === 'success' && Array.isArray(answer.snapshots)) {
      render(answer);
    } else if (!loaded) {
      part('[data-snapshots-plan]').textContent = answer.message || tx('load_failed');
    }
    return answer;
  });
}

function setupForm() {
  var form = part('[data-snapshot-form]');
  onSubmit(form, function () {
    var name = form.elements.snapshot.value.trim();
    return api('POST', urls.list, name ? { snapshot: name } : {}).then(function (result) {
      if (result.status === 'success') { form.elements.snapshot.value = ''; }
      return result;
    });
  }, load);
}

function setupButtons() {
  section.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-restore-snapshot], button[data-delete-snapshot]');
    if (!button) { return; }
    event.preventDefault();
    var restore = button.hasAttribute('data-restore-snapshot');
    var name = button.getAttribute(restore ? 'data-restore-snapshot' : 'data-delete-snapshot');
    var kind = restore ? 'restore' : 'delete';
    confirmThenRun(button, { title: tx(kind + '_title', { snapshot: name }), body: tx(kind + '_body'), ok: tx(kind) }, function () {
      return api(restore ? 'POST' : 'DELETE', snapshotUrl(kind, name));
    }, load);
  });
}

if (section) {
  setupForm();
  setupButtons();
  load();
}
