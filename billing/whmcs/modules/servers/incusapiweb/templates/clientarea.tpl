{* incus-api-web: the product details page (ClientArea: tabOverviewReplacementTemplate).
   Variables: $incus (status, ssh, ssh_host, ssh_port, ports, ip, traffic_*), $incus_error,
   $incus_password, $incus_sso_url, $incus_console_url. *}
<div class="incusapiweb">
{if $incus_error}
    <div class="alert alert-warning">{$incus_error|escape}</div>
{/if}
{if $incus}
    <table class="table table-striped">
        <tr><th>Status</th><td>{$incus.status|escape}{if $incus.suspended} (suspended){/if}</td></tr>
        <tr><th>SSH</th><td>{if $incus.ssh}<code>ssh root@{$incus.ssh_host|escape} -p {$incus.ssh_port|escape}</code>{else}-{/if}</td></tr>
        <tr><th>Username</th><td>root</td></tr>
        <tr><th>Password</th><td>{if $incus_password}<code>{$incus_password|escape}</code>{else}-{/if}</td></tr>
        <tr><th>Forwarded ports</th><td>{if $incus.ports}{$incus.ssh_host|escape}:{$incus.ports|escape} (tcp+udp, the same port numbers inside){else}-{/if}</td></tr>
        <tr><th>Traffic this month</th><td>{if $incus.traffic_used}{$incus.traffic_used|escape} of {$incus.traffic_quota|escape}{if $incus.traffic_percent !== null} ({$incus.traffic_percent|escape}%){/if}; in {$incus.traffic_in|escape}, out {$incus.traffic_out|escape}{if $incus.traffic_enforced} &mdash; over the quota: {$incus.traffic_enforced|escape}{/if}{else}not counted yet{/if}</td></tr>
    </table>
{/if}
    <p>
        <a class="btn btn-primary" href="{$incus_sso_url|escape}" target="_blank">Control panel</a>
        <a class="btn btn-default" href="{$incus_console_url|escape}" target="_blank">Console</a>
    </p>
</div>
