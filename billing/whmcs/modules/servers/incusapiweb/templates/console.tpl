{* incus-api-web: the console button's page when WHMCS could not redirect at once. The link opens
   once, within 60 seconds. *}
<meta http-equiv="refresh" content="0; url={$console_url|escape}">
<p><a class="btn btn-primary" href="{$console_url|escape}">Open the console</a> (the link opens once, within 60 seconds)</p>
