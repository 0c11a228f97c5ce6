<?php
/**
 * incus-api-web: a WHMCS provisioning (server) module that sells Incus containers as NAT VPS.
 *
 * Copy billing/whmcs/modules/servers/incusapiweb/ into WHMCS's modules/servers/ (see
 * billing/README.md). Every setting lives in WHMCS's own forms:
 *
 *  - Server (System Settings > Servers): Hostname (or IP address) and Port of the service (always
 *    HTTPS, whatever the "Secure" box says), Access Hash = the X-API-Hash init_db.py printed, and
 *    Username = how the service's certificate is trusted: its public key pin `sha256//...`
 *    (init_db.py prints it), or the absolute path of a CA/certificate PEM file on the WHMCS
 *    host, or empty for the system's CA store (a real certificate). `insecure` switches the
 *    certificate checks off, and only that word does.
 *  - Product (Module Settings): the plan, see incusapiweb_ConfigOptions().
 *
 * The container of a service is `vps<serviceid>`, stable across renames of the domain.
 * Each function returns "success" or the service's own message; none lets a PHP error out.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

use WHMCS\Database\Capsule;

const INCUSAPIWEB_MODULE = 'incusapiweb';
const INCUSAPIWEB_DEFAULT_PORT = 5000;
const INCUSAPIWEB_CONNECT_TIMEOUT = 5;

/** The product's Module Settings, in the order WHMCS passes them as configoption1..N. */
function incusapiweb_option_fields()
{
    return [
        'image' => ['Image', 'text', 'debian12-ssh', 'A local image alias of the host (e.g. debian12-ssh), a fingerprint, or remote:alias'],
        'cpu' => ['CPU cores', 'text', '1', 'Cores, 1-1024 (empty: no limit)'],
        'memory' => ['Memory', 'text', '512MiB', 'e.g. 512MiB, 1GiB (MB, MiB, GB, GiB, TB, TiB; empty: no limit)'],
        'disk' => ['Disk', 'text', '10GiB', 'Root disk, e.g. 10GiB (needs a btrfs, zfs, lvm or ceph pool; empty: no limit)'],
        'swap' => ['Swap', 'yesno', '', 'Tick to let the container use the host\'s swap'],
        'ingress' => ['Download rate', 'text', '100Mbit', 'e.g. 100Mbit, 1Gbit (kbit, Mbit, Gbit; empty: no limit)'],
        'egress' => ['Upload rate', 'text', '100Mbit', 'e.g. 100Mbit (empty: no limit)'],
        'processes' => ['Processes', 'text', '512', 'Most processes at once (empty: no limit)'],
        'traffic_quota' => ['Monthly traffic', 'text', '500GB', 'e.g. 500GB, 1TB (GB = 10^9 bytes); 0: unlimited'],
        'traffic_direction' => ['Traffic counted', 'dropdown', 'both', 'both: in + out; out; in; max: the larger'],
        'traffic_action' => ['Over the traffic', 'dropdown', 'throttle', 'throttle: slowed to the host\'s TRAFFIC_THROTTLE_RATE; suspend: stopped until the reset'],
        'ports' => ['Forwarded ports', 'text', '10', 'Consecutive host ports forwarded tcp+udp to the same ports inside, 0-1000'],
        'ssh_port' => ['SSH port', 'text', 'auto', 'auto: a free host port forwarded to port 22; a number: that port; empty: no SSH forward'],
    ];
}

function incusapiweb_MetaData()
{
    return [
        'DisplayName' => 'incus-api-web (NAT VPS)',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultNonSSLPort' => (string) INCUSAPIWEB_DEFAULT_PORT,
        'DefaultSSLPort' => (string) INCUSAPIWEB_DEFAULT_PORT,
        'ServiceSingleSignOnLabel' => 'Log in to the control panel',
    ];
}

function incusapiweb_ConfigOptions()
{
    $options = [];
    foreach (incusapiweb_option_fields() as $key => [$label, $type, $default, $description]) {
        $field = ['FriendlyName' => $label, 'Type' => $type, 'Description' => $description];
        if ($type === 'text') {
            $field['Size'] = '25';
            $field['Default'] = $default;
        } elseif ($type === 'dropdown') {
            $field['Options'] = $key === 'traffic_direction' ? 'both,out,in,max' : 'throttle,suspend';
            $field['Default'] = $default;
        }
        $options[$label] = $field;
    }
    return $options;
}

// -- talking to the service -------------------------------------------------------------------

/** Thrown for anything the caller should show as it is (the service's message, cannot reach...). */
class IncusApiWebError extends \Exception
{
    public $httpStatus;

    public function __construct($message, $httpStatus = 0)
    {
        parent::__construct($message);
        $this->httpStatus = $httpStatus;
    }
}

/** The server's address, hash and TLS trust from the WHMCS server fields. */
function incusapiweb_server(array $params)
{
    $host = trim((string) ($params['serverhostname'] ?? ''));
    if ($host === '') {
        $host = trim((string) ($params['serverip'] ?? ''));
    }
    if ($host === '') {
        throw new IncusApiWebError('incus-api-web: the server has no hostname or IP address (System Settings > Servers)');
    }
    $host = preg_replace('#^https?://#i', '', rtrim($host, '/'));
    $port = (int) ($params['serverport'] ?? 0);
    // "host:port" or "[v6]:port" in the hostname field: that port wins over the Port field
    // (WHMCS may fill the latter with the module's default).
    if (preg_match('/^\[(.+)\](?::(\d+))?$/', $host, $m) || (substr_count($host, ':') === 1 && preg_match('/^(.+):(\d+)$/', $host, $m))) {
        $host = $m[1];
        $port = (int) ($m[2] ?? 0) ?: $port;
    }
    if ($port <= 0 || $port > 65535) {
        $port = INCUSAPIWEB_DEFAULT_PORT;
    }
    // HTTPS only, whatever WHMCS's "Secure" box says: the X-API-Hash never travels in clear (a
    // service with TLS=off sits behind an HTTPS reverse proxy, which is the address to give).
    $scheme = 'https';
    $hostPart = strpos($host, ':') !== false ? '[' . $host . ']' : $host;
    return [
        'host' => $host,
        'port' => $port,
        'where' => $hostPart . ':' . $port,
        'base' => $scheme . '://' . $hostPart . ':' . $port,
        'scheme' => $scheme,
        'hash' => trim((string) ($params['serveraccesshash'] ?? '')),
        'trust' => trim((string) ($params['serverusername'] ?? '')),
    ];
}

/** How the certificate is trusted: a pin, a CA file, the system store, or (asked for) nothing. */
function incusapiweb_tls_options(array $server)
{
    $trust = $server['trust'];
    if ($trust === '') {
        return [CURLOPT_SSL_VERIFYPEER => true, CURLOPT_SSL_VERIFYHOST => 2];
    }
    if (stripos($trust, 'sha256//') === 0) {
        if (!defined('CURLOPT_PINNEDPUBLICKEY')) {
            throw new IncusApiWebError('incus-api-web: this PHP\'s cURL cannot pin a key: put the path of the service\'s '
                . 'certificate file (cert.pem, from its dashboard\'s Settings page) in the server\'s Username field instead');
        }
        // The key is pinned: curl hangs up before sending anything when it differs. The CA and
        // name checks are left to the pin (the service's certificate is self-signed).
        return [CURLOPT_SSL_VERIFYPEER => false, CURLOPT_SSL_VERIFYHOST => 0, CURLOPT_PINNEDPUBLICKEY => $trust];
    }
    if (strtolower($trust) === 'insecure') {
        return [CURLOPT_SSL_VERIFYPEER => false, CURLOPT_SSL_VERIFYHOST => 0];
    }
    if ($trust[0] === '/') {
        if (!is_readable($trust)) {
            throw new IncusApiWebError("incus-api-web: the CA file {$trust} (the server's Username field) cannot be read");
        }
        return [CURLOPT_SSL_VERIFYPEER => true, CURLOPT_SSL_VERIFYHOST => 2, CURLOPT_CAINFO => $trust];
    }
    throw new IncusApiWebError('incus-api-web: the server\'s Username field must be the key pin (sha256//...), '
        . 'the path of a CA file, empty (the system CA store) or the word insecure');
}

/**
 * The service answers in Chinese or English: WHMCS's default language (General Settings >
 * Localisation) picks which; any other language gets English.
 */
function incusapiweb_language_header()
{
    $language = strtolower((string) ($GLOBALS['CONFIG']['Language'] ?? ''));
    if ($language === '') {
        return [];
    }
    return ['Accept-Language: ' . (strpos($language, 'chinese') === 0 ? 'zh' : 'en')];
}

/** The strings logModuleCall must mask: each secret as it is, form-encoded and JSON-escaped. */
function incusapiweb_secrets(array $params, array $more = [])
{
    $secrets = [];
    $given = array_merge([(string) ($params['serveraccesshash'] ?? ''), trim((string) ($params['serveraccesshash'] ?? '')),
        (string) ($params['serverpassword'] ?? ''), (string) ($params['password'] ?? '')], $more);
    foreach ($given as $secret) {
        if (!is_string($secret) || strlen($secret) < 4) {
            continue;
        }
        $json = json_encode($secret, JSON_UNESCAPED_UNICODE);
        array_push($secrets, $secret, rawurlencode($secret), urlencode($secret), is_string($json) ? substr($json, 1, -1) : $secret);
    }
    return array_values(array_unique($secrets));
}

function incusapiweb_log($action, $request, $response, $processed, array $secrets)
{
    if (function_exists('logModuleCall')) {
        logModuleCall(INCUSAPIWEB_MODULE, $action, $request, $response, $processed, $secrets);
    }
}

/**
 * One call of the service: returns the decoded JSON answer of a success; throws
 * IncusApiWebError with the service's message (or "cannot reach ...") otherwise.
 */
function incusapiweb_call(array $params, $method, $path, array $fields = [], $timeout = 30, $action = null)
{
    $server = incusapiweb_server($params);
    $tls = incusapiweb_tls_options($server);
    $action = $action ?: ($method . ' ' . $path);
    $secrets = incusapiweb_secrets($params, array_filter([$fields['password'] ?? null]));
    if ($server['hash'] === '') {
        throw new IncusApiWebError('incus-api-web: the server has no Access Hash (the X-API-Hash init_db.py printed)');
    }
    $url = $server['base'] . $path;
    $body = http_build_query($fields, '', '&', PHP_QUERY_RFC3986);
    if ($method === 'GET' && $body !== '') {
        $url .= '?' . $body;
    }
    $curl = curl_init();
    $options = [
        CURLOPT_URL => $url,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_FOLLOWLOCATION => false,
        CURLOPT_CONNECTTIMEOUT => INCUSAPIWEB_CONNECT_TIMEOUT,
        CURLOPT_TIMEOUT => $timeout,
        CURLOPT_PROXY => '',
        CURLOPT_NOPROXY => '*',
        CURLOPT_HTTPHEADER => array_merge(['X-API-Hash: ' . $server['hash'], 'Accept: application/json', 'Expect:'],
            incusapiweb_language_header()),
        CURLOPT_USERAGENT => 'incus-api-web-whmcs/1.0',
    ] + $tls;
    if (defined('CURLOPT_PROTOCOLS')) {
        $options[CURLOPT_PROTOCOLS] = CURLPROTO_HTTP | CURLPROTO_HTTPS;
    }
    if ($method === 'POST') {
        $options[CURLOPT_POST] = true;
        $options[CURLOPT_POSTFIELDS] = $body;
    } elseif ($method !== 'GET') {
        $options[CURLOPT_CUSTOMREQUEST] = $method;
    }
    curl_setopt_array($curl, $options);
    $raw = curl_exec($curl);
    $errno = curl_errno($curl);
    $error = curl_error($curl);
    $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    if (PHP_VERSION_ID < 80000) {
        curl_close($curl);  // a no-op since PHP 8 (the handle goes with its last reference)
    }
    $request = $method . ' ' . $url . ($method === 'POST' ? "\n" . $body : '');
    if ($raw === false || $errno !== 0) {
        if ($errno === 90 /* CURLE_SSL_PINNEDPUBKEYNOTMATCH */) {
            $message = "incus-api-web at {$server['where']} refused: its certificate's public key is not the pinned "
                . "one (the server's Username field); nothing was sent";
        } else {
            $message = "cannot reach incus-api-web at {$server['where']}: {$error}";
            if (in_array($errno, [51, 60, 77], true)) {  // the certificate (or its name) was not trusted
                $message .= ' (a self-signed certificate: put its key pin sha256//... in the server\'s Username field)';
            }
        }
        incusapiweb_log($action, $request, $error, $message, $secrets);
        throw new IncusApiWebError($message);
    }
    $answer = json_decode($raw, true);
    if (!is_array($answer)) {
        $message = "incus-api-web at {$server['where']} answered HTTP {$status} without JSON: "
            . substr(trim(strip_tags($raw)), 0, 200);
        incusapiweb_log($action, $request, $raw, $message, $secrets);
        throw new IncusApiWebError($message, $status);
    }
    $masked = $answer;
    if (isset($masked['password'])) {
        $masked['password'] = '********';
    }
    $generated = isset($answer['password']) && is_string($answer['password']) ? incusapiweb_secrets([], [$answer['password']]) : [];
    incusapiweb_log($action, $request, $raw, $masked, array_merge($secrets, $generated));
    $outcome = $answer['status'] ?? null;
    if ($status >= 400 || $outcome === 'error' || $outcome === 'NotFound') {
        $message = isset($answer['message']) && is_string($answer['message']) ? $answer['message'] : "HTTP {$status}";
        throw new IncusApiWebError($message, $status);
    }
    return $answer;
}

/** Runs $work, turning every failure into a message (never a PHP error) and logging it. */
function incusapiweb_guard($action, array $params, callable $work)
{
    try {
        return $work();
    } catch (IncusApiWebError $e) {
        return $e->getMessage();
    } catch (\Throwable $e) {
        $message = 'incus-api-web module error: ' . $e->getMessage();
        incusapiweb_log($action, '', get_class($e) . ': ' . $e->getMessage(), $message, incusapiweb_secrets($params));
        return $message;
    }
}

function incusapiweb_name(array $params)
{
    $id = (int) ($params['serviceid'] ?? 0);
    if ($id <= 0) {
        throw new IncusApiWebError('incus-api-web: no service id');
    }
    return 'vps' . $id;
}

/** The product's settings by key (configoption1..N), with the configurable options on top. */
function incusapiweb_options(array $params)
{
    $values = [];
    $i = 1;
    $configurable = isset($params['configoptions']) && is_array($params['configoptions']) ? $params['configoptions'] : [];
    foreach (incusapiweb_option_fields() as $key => [$label, $type]) {
        $value = $params['configoption' . $i] ?? '';
        // A configurable option (Setup > Products > Configurable Options) named by the key
        // ("memory", or "memory|Memory") or by the label overrides the product's value.
        foreach ([$key, $label] as $name) {
            if (array_key_exists($name, $configurable) && $configurable[$name] !== '' && $configurable[$name] !== null) {
                $value = $configurable[$name];
            }
        }
        $values[$key] = is_string($value) ? trim($value) : $value;
        $i++;
    }
    return $values;
}

/** The plan fields of the service from the product's settings (empty ones left out). */
function incusapiweb_plan_fields(array $options)
{
    $fields = [];
    foreach (['cpu', 'memory', 'disk', 'ingress', 'egress', 'processes', 'traffic_quota', 'traffic_direction', 'traffic_action'] as $key) {
        if (($options[$key] ?? '') !== '' && $options[$key] !== null) {
            $fields[$key] = (string) $options[$key];
        }
    }
    $swap = $options['swap'] ?? '';
    $fields['swap'] = ($swap === true || in_array(strtolower((string) $swap), ['on', 'yes', '1', 'true'], true)) ? 'true' : 'false';
    return $fields;
}

function incusapiweb_ssh_key(array $params)
{
    $fields = isset($params['customfields']) && is_array($params['customfields']) ? $params['customfields'] : [];
    foreach (['SSH Key', 'ssh_key', 'SSH key', 'SSH Public Key'] as $name) {
        if (!empty($fields[$name]) && is_string($fields[$name])) {
            return trim($fields[$name]);
        }
    }
    return '';
}

function incusapiweb_human_bytes($bytes)
{
    if ($bytes === null) {
        return 'unlimited';
    }
    $units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
    $value = (float) $bytes;
    $i = 0;
    while ($value >= 1000 && $i < count($units) - 1) {
        $value /= 1000;
        $i++;
    }
    return ($i === 0 ? (string) (int) $value : number_format($value, 2)) . ' ' . $units[$i];
}

// -- the functions WHMCS calls ------------------------------------------------------------------

function incusapiweb_TestConnection(array $params)
{
    try {
        incusapiweb_call($params, 'GET', '/ports/free', ['count' => 1], 15, 'TestConnection');
        return ['success' => true, 'error' => ''];
    } catch (IncusApiWebError $e) {
        if ($e->httpStatus === 409) {  // the pool is full, but the service answered and took the hash
            return ['success' => true, 'error' => ''];
        }
        return ['success' => false, 'error' => $e->getMessage()];
    } catch (\Throwable $e) {
        return ['success' => false, 'error' => 'incus-api-web module error: ' . $e->getMessage()];
    }
}

function incusapiweb_CreateAccount(array $params)
{
    return incusapiweb_guard('CreateAccount', $params, function () use ($params) {
        $name = incusapiweb_name($params);
        $options = incusapiweb_options($params);
        if ($options['image'] === '') {
            throw new IncusApiWebError('incus-api-web: the product has no image (Module Settings)');
        }
        $fields = ['name' => $name, 'image' => $options['image']] + incusapiweb_plan_fields($options);
        if ($options['ssh_port'] !== '') {
            $fields['ssh_port'] = $options['ssh_port'];
        }
        if ($options['ports'] !== '' && (string) $options['ports'] !== '0') {
            $fields['ports'] = $options['ports'];
        }
        $password = (string) ($params['password'] ?? '');
        if ($password !== '') {
            $fields['password'] = $password;
        }
        $key = incusapiweb_ssh_key($params);
        if ($key !== '') {
            $fields['ssh_key'] = $key;
        }
        $answer = incusapiweb_call($params, 'POST', '/container/create', $fields, 300, 'CreateAccount');
        // Where WHMCS shows them: Dedicated IP = SSH host:port, Assigned IPs = the port block,
        // username root and the root password (WHMCS stores it encrypted).
        $update = ['serviceid' => (int) $params['serviceid'], 'serviceusername' => 'root'];
        if (isset($answer['ssh']['host'], $answer['ssh']['port'])) {
            $update['dedicatedip'] = $answer['ssh']['host'] . ':' . $answer['ssh']['port'];
        } elseif (!empty($answer['ip'])) {
            $update['dedicatedip'] = $answer['ip'];
        }
        if (isset($answer['ports']['start'], $answer['ports']['end'])) {
            $update['assignedips'] = 'ports ' . $answer['ports']['start'] . '-' . $answer['ports']['end'] . ' (tcp+udp)';
        }
        if (isset($answer['password']) && is_string($answer['password'])) {
            $update['servicepassword'] = $answer['password'];  // generated by the service: WHMCS had none
        }
        if (function_exists('localAPI')) {
            $done = localAPI('UpdateClientProduct', $update);
            if (!is_array($done) || ($done['result'] ?? '') !== 'success') {
                incusapiweb_log('CreateAccount', 'UpdateClientProduct', $done, 'the details were not stored', incusapiweb_secrets($params, array_filter([$update['servicepassword'] ?? null])));
            }
        }
        return 'success';
    });
}

function incusapiweb_action(array $params, $action, $timeout = 120, array $extra = [])
{
    $name = incusapiweb_name($params);
    return incusapiweb_call($params, 'POST', '/container/' . rawurlencode($name) . '/action', ['action' => $action] + $extra, $timeout, $action);
}

function incusapiweb_SuspendAccount(array $params)
{
    return incusapiweb_guard('SuspendAccount', $params, function () use ($params) {
        incusapiweb_action($params, 'suspend');
        return 'success';
    });
}

function incusapiweb_UnsuspendAccount(array $params)
{
    return incusapiweb_guard('UnsuspendAccount', $params, function () use ($params) {
        incusapiweb_action($params, 'unsuspend');
        return 'success';
    });
}

function incusapiweb_TerminateAccount(array $params)
{
    return incusapiweb_guard('TerminateAccount', $params, function () use ($params) {
        try {
            incusapiweb_action($params, 'delete', 180);
        } catch (IncusApiWebError $e) {
            if ($e->httpStatus !== 404) {  // already gone: terminated all the same
                throw $e;
            }
        }
        return 'success';
    });
}

function incusapiweb_ChangePassword(array $params)
{
    return incusapiweb_guard('ChangePassword', $params, function () use ($params) {
        $name = incusapiweb_name($params);
        incusapiweb_call($params, 'POST', '/container/' . rawurlencode($name) . '/password',
            ['password' => (string) ($params['password'] ?? '')], 60, 'ChangePassword');
        return 'success';
    });
}

function incusapiweb_ChangePackage(array $params)
{
    return incusapiweb_guard('ChangePackage', $params, function () use ($params) {
        $name = incusapiweb_name($params);
        $fields = incusapiweb_plan_fields(incusapiweb_options($params));
        incusapiweb_call($params, 'POST', '/container/' . rawurlencode($name) . '/limits', $fields, 120, 'ChangePackage');
        return 'success';
    });
}

/**
 * Every container's traffic of this server in one GET /traffic, written to its service as the
 * bandwidth use and limit (WHMCS's MB: 1024 * 1024 bytes; limit 0: unlimited).
 */
function incusapiweb_UsageUpdate(array $params)
{
    return incusapiweb_guard('UsageUpdate', $params, function () use ($params) {
        $answer = incusapiweb_call($params, 'GET', '/traffic', [], 60, 'UsageUpdate');
        $serverId = (int) ($params['serverid'] ?? 0);
        $now = date('Y-m-d H:i:s');
        foreach ($answer['containers'] ?? [] as $row) {
            if (!is_array($row) || !preg_match('/^vps([0-9]+)$/', (string) ($row['name'] ?? ''), $m)) {
                continue;  // not sold through this module
            }
            $quota = $row['quota_bytes'] ?? null;
            Capsule::table('tblhosting')
                ->where('id', (int) $m[1])
                ->where('server', $serverId)
                ->update([
                    'bwusage' => round(((int) ($row['counted_bytes'] ?? 0)) / 1048576, 2),
                    'bwlimit' => $quota === null ? 0 : (int) round($quota / 1048576),
                    'lastupdate' => $now,
                ]);
        }
        return 'success';
    });
}

function incusapiweb_ServiceSingleSignOn(array $params)
{
    $result = incusapiweb_guard('ServiceSingleSignOn', $params, function () use ($params) {
        $name = incusapiweb_name($params);
        $answer = incusapiweb_call($params, 'POST', '/container/' . rawurlencode($name) . '/customer_link', [], 30, 'ServiceSingleSignOn');
        return ['success' => true, 'redirectTo' => incusapiweb_server($params)['base'] . $answer['url']];
    });
    return is_array($result) ? $result : ['success' => false, 'errorMsg' => $result];
}

/** The server's own dashboard (System Settings > Servers: the login button). */
function incusapiweb_AdminLink(array $params)
{
    try {
        $base = incusapiweb_server($params)['base'];
    } catch (\Throwable $e) {
        return '';
    }
    return '<a href="' . htmlspecialchars($base . '/login', ENT_QUOTES) . '" target="_blank" class="btn btn-default btn-sm">incus-api-web</a>';
}

function incusapiweb_console_link(array $params)
{
    $name = incusapiweb_name($params);
    $answer = incusapiweb_call($params, 'POST', '/container/' . rawurlencode($name) . '/console_token', [], 30, 'console');
    return incusapiweb_server($params)['base'] . $answer['url'];
}

/**
 * The console button (admin and client area): a one-time link (60 s). Served by WHMCS the browser
 * is redirected to it; the client area falls back to a page with the link.
 */
function incusapiweb_console(array $params)
{
    $result = incusapiweb_guard('console', $params, function () use ($params) {
        return ['url' => incusapiweb_console_link($params)];
    });
    if (!is_array($result)) {
        return $result;
    }
    if (PHP_SAPI !== 'cli' && !headers_sent()) {
        header('Location: ' . $result['url'], true, 302);
        exit;
    }
    return ['templatefile' => 'templates/console', 'vars' => ['console_url' => $result['url']]];
}

function incusapiweb_start(array $params)
{
    return incusapiweb_guard('start', $params, function () use ($params) {
        incusapiweb_action($params, 'start');
        return 'success';
    });
}

function incusapiweb_stop(array $params)
{
    return incusapiweb_guard('stop', $params, function () use ($params) {
        incusapiweb_action($params, 'stop');
        return 'success';
    });
}

function incusapiweb_restart(array $params)
{
    return incusapiweb_guard('restart', $params, function () use ($params) {
        incusapiweb_action($params, 'restart');
        return 'success';
    });
}

/** A new root filesystem from the product's image; root's password stays the service's. */
function incusapiweb_reinstall(array $params)
{
    return incusapiweb_guard('reinstall', $params, function () use ($params) {
        $options = incusapiweb_options($params);
        $extra = ['image' => $options['image']];
        if ((string) ($params['password'] ?? '') !== '') {
            $extra['password'] = (string) $params['password'];
        }
        $key = incusapiweb_ssh_key($params);
        if ($key !== '') {
            $extra['ssh_key'] = $key;
        }
        incusapiweb_action($params, 'reinstall', 300, $extra);
        return 'success';
    });
}

/**
 * Admin only: a new traffic period from now (the use back to zero, a throttle or a suspension for
 * traffic lifted): a manual top-up, e.g. once a top-up invoice is paid.
 */
function incusapiweb_resettraffic(array $params)
{
    return incusapiweb_guard('resettraffic', $params, function () use ($params) {
        $name = incusapiweb_name($params);
        incusapiweb_call($params, 'POST', '/container/' . rawurlencode($name) . '/traffic/reset', [], 60, 'resettraffic');
        return 'success';
    });
}

function incusapiweb_AdminCustomButtonArray()
{
    return ['Start' => 'start', 'Stop' => 'stop', 'Restart' => 'restart', 'Reinstall' => 'reinstall', 'Console' => 'console',
        'Reset traffic' => 'resettraffic'];
}

function incusapiweb_ClientAreaCustomButtonArray()
{
    return ['Start' => 'start', 'Stop' => 'stop', 'Restart' => 'restart', 'Reinstall' => 'reinstall', 'Console' => 'console'];
}

function incusapiweb_ClientAreaAllowedFunctions()
{
    return ['start', 'stop', 'restart', 'reinstall', 'console'];
}

/** The live facts of the container for the admin's and the client's pages. */
function incusapiweb_facts(array $params)
{
    $name = incusapiweb_name($params);
    $info = incusapiweb_call($params, 'GET', '/container/' . rawurlencode($name) . '/info', [], 30, 'info');
    $traffic = $info['traffic'] ?? null;
    $block = $info['port_block'] ?? null;
    return [
        'name' => $name,
        'status' => (string) ($info['status'] ?? 'unknown'),
        'suspended' => !empty($info['suspended']),
        'ip' => (string) ($info['ip'] ?? ''),
        'ssh' => isset($info['ssh']['host'], $info['ssh']['port']) ? $info['ssh']['host'] . ':' . $info['ssh']['port'] : '',
        'ssh_host' => (string) ($info['ssh']['host'] ?? ''),
        'ssh_port' => (string) ($info['ssh']['port'] ?? ''),
        'ports' => is_array($block) && isset($block['start'], $block['end']) ? $block['start'] . '-' . $block['end'] : '',
        'traffic_used' => is_array($traffic) ? incusapiweb_human_bytes($traffic['counted_bytes'] ?? 0) : '',
        'traffic_quota' => is_array($traffic) ? incusapiweb_human_bytes($traffic['quota_bytes'] ?? null) : '',
        'traffic_percent' => is_array($traffic) && isset($traffic['percent']) ? $traffic['percent'] : null,
        'traffic_in' => is_array($traffic) ? incusapiweb_human_bytes($traffic['rx_bytes'] ?? 0) : '',
        'traffic_out' => is_array($traffic) ? incusapiweb_human_bytes($traffic['tx_bytes'] ?? 0) : '',
        'traffic_enforced' => is_array($traffic) ? (string) ($traffic['enforced'] ?? '') : '',
        'live' => !empty($info['live_data_available']),
    ];
}

function incusapiweb_AdminServicesTabFields(array $params)
{
    $facts = incusapiweb_guard('AdminServicesTabFields', $params, function () use ($params) {
        return incusapiweb_facts($params);
    });
    if (!is_array($facts)) {
        return ['incus-api-web' => htmlspecialchars($facts, ENT_QUOTES)];
    }
    $e = function ($value) {
        return htmlspecialchars((string) $value, ENT_QUOTES);
    };
    $traffic = $facts['traffic_used'] === '' ? 'not counted yet'
        : $facts['traffic_used'] . ' of ' . $facts['traffic_quota'] . ' (in ' . $facts['traffic_in'] . ', out ' . $facts['traffic_out'] . ')'
          . ($facts['traffic_enforced'] !== '' ? ' - over the quota: ' . $facts['traffic_enforced'] : '');
    return [
        'Container' => $e($facts['name']),
        'Status' => $e($facts['status'] . ($facts['suspended'] ? ' (suspended)' : '') . ($facts['live'] ? '' : ' (last known: Incus unreachable)')),
        'Address' => $e($facts['ip'] !== '' ? $facts['ip'] : '-'),
        'SSH' => $e($facts['ssh'] !== '' ? $facts['ssh'] : '-'),
        'Ports' => $e($facts['ports'] !== '' ? $facts['ports'] . ' (tcp+udp)' : '-'),
        'Traffic' => $e($traffic),
    ];
}

function incusapiweb_ClientArea(array $params)
{
    $facts = incusapiweb_guard('ClientArea', $params, function () use ($params) {
        return incusapiweb_facts($params);
    });
    $serviceId = (int) ($params['serviceid'] ?? 0);
    $vars = [
        'incus_error' => is_array($facts) ? '' : $facts,
        'incus' => is_array($facts) ? $facts : null,
        'incus_password' => (string) ($params['password'] ?? ''),
        'incus_sso_url' => 'clientarea.php?action=productdetails&id=' . $serviceId . '&dosinglesignon=1',
        'incus_console_url' => 'clientarea.php?action=productdetails&id=' . $serviceId . '&modop=custom&a=console',
    ];
    return ['tabOverviewReplacementTemplate' => 'templates/clientarea.tpl', 'templateVariables' => $vars];
}
