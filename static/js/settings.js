/* The settings page (settings.html): copy the X-API-Hash, and ask before regenerating the API
   secret. */
import { confirmDialog, setupCopyButtons, t } from './common.js';

/* Plain forms that ask first (regenerate the API secret) */
function setupConfirmForm(form) {
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    confirmDialog(form.getAttribute('data-confirm'), [], t('confirm')).then(function (ok) {
      if (ok) { form.submit(); }
    });
  });
}

setupCopyButtons();
document.querySelectorAll('form[data-confirm]').forEach(setupConfirmForm);
