/* The images page (images.html): refresh, delete an image, add and remove aliases, import from
   remote:alias with the progress Incus reports. */
import {
  api, confirmDialog, el, notice, onButton, refreshAll, setBusy, setupRefreshButtons, showResult, t, url, urls
} from './common.js';

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
function addAlias(event) {
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
}

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

setupRefreshButtons();
onButton('data-delete-image', deleteImage);
onButton('data-remove-alias', removeAlias);
document.addEventListener('submit', addAlias);
document.querySelectorAll('[data-import-form]').forEach(setupImport);
