<?php
/**
 * incus-api-web server module for ZJMF (魔方财务).
 *
 * Install: copy the folder `incusapiweb/` into ZJMF's `public/plugins/servers/`
 * (see billing/README.md). Every function ZJMF calls returns ZJMF's shapes
 * (['status' => 'success'|'error', 'msg' => ...]) and never lets a PHP error out:
 * each is wrapped in a try/catch of \Throwable, and a failure shows the service's own message.
 *
 * Server fields (服务器设置):
 *   主机名 / IP 地址 (server_host / server_ip)  the service's address; a full URL (https://panel.example.com) works too;
 *                                               HTTPS only, whatever the SSL box (secure) says
 *   端口 (port)                                 the service's port (default 5000)
 *   访问散列值 (accesshash)                     the X-API-Hash that init_db.py printed (SHA-256 of API_SECRET_KEY)
 *   用户名 (server_username)                    how the certificate is checked:
 *       sha256//...   the public key pin init_db.py printed (CURLOPT_PINNEDPUBLICKEY; the self-signed default)
 *       /path/ca.pem  a CA file (or the service's cert.pem) to verify the certificate and its name with
 *       (empty)       the system's CAs (a real certificate, e.g. behind an HTTPS reverse proxy)
 *       insecure      no check at all: only when the seller writes this word (not recommended)
 *
 * The container is named vps<hostid> (stable whatever the host's domain field says).
 * After a create, CreateAccount writes the host record (think\Db::name('host')): dedicatedip (the SSH host),
 * port (the SSH port), username (root), password (cmf_encrypt'ed, as ZJMF stores it), assignedips
 * ("<host>:<start>-<end>", the port block).
 */

use think\Db;

const INCUSAPIWEB_DEFAULT_PORT = 5000;
const INCUSAPIWEB_CONNECT_TIMEOUT = 5;
const INCUSAPIWEB_TIMEOUT = 60;
const INCUSAPIWEB_LONG_TIMEOUT = 300;   // create, reinstall: an image may be unpacked

// -- what ZJMF reads ----------------------------------------------------------------------------

function incusapiweb_MetaData()
{
    return [
        'DisplayName' => 'incus-api-web (Incus NAT VPS)',
        'APIVersion'  => '1.0.0',
        'HelpDoc'     => 'billing/README.md',
    ];
}

function incusapiweb_ConfigOptions()
{
    return [
        ['type' => 'text', 'name' => '镜像 Image', 'key' => 'image', 'default' => 'debian12-ssh',
         'description' => '本地镜像别名、指纹或 remote:alias / a local alias, fingerprint or remote:alias'],
        ['type' => 'text', 'name' => 'CPU 核心 Cores', 'key' => 'cpu', 'default' => '1',
         'description' => '1-1024 (limits.cpu)'],
        ['type' => 'text', 'name' => '内存 Memory', 'key' => 'memory', 'default' => '512MiB',
         'description' => '单位 MB/MiB/GB/GiB, 例 512MiB / units MB, MiB, GB, GiB, e.g. 512MiB'],
        ['type' => 'text', 'name' => '硬盘 Disk', 'key' => 'disk', 'default' => '10GiB',
         'description' => '例 10GiB; 需 btrfs/zfs/lvm/ceph 存储池, dir 池留空 / e.g. 10GiB; needs a btrfs, zfs, lvm or ceph pool (empty on a dir pool)'],
        ['type' => 'dropdown', 'name' => 'Swap', 'key' => 'swap', 'default' => 'false',
         'options' => ['false' => '禁用 off', 'true' => '启用 on'], 'description' => '能否使用主机的 swap / may use the host\'s swap'],
        ['type' => 'text', 'name' => '下载带宽 Ingress', 'key' => 'ingress', 'default' => '100Mbit',
         'description' => '单位 kbit/Mbit/Gbit, 留空不限 / units kbit, Mbit, Gbit; empty: no limit'],
        ['type' => 'text', 'name' => '上传带宽 Egress', 'key' => 'egress', 'default' => '100Mbit',
         'description' => '单位 kbit/Mbit/Gbit, 留空不限 / units kbit, Mbit, Gbit; empty: no limit'],
        ['type' => 'text', 'name' => '进程数 Processes', 'key' => 'processes', 'default' => '512',
         'description' => '最多同时运行的进程数 / most processes at once'],
        ['type' => 'text', 'name' => '月流量 Traffic quota', 'key' => 'traffic_quota', 'default' => '0',
         'description' => '例 500GB, 1TB; 0 不限 / e.g. 500GB, 1TB; 0: unlimited'],
        ['type' => 'dropdown', 'name' => '流量计算 Traffic direction', 'key' => 'traffic_direction', 'default' => 'both',
         'options' => ['both' => '入+出 in+out', 'out' => '出 out', 'in' => '入 in', 'max' => '较大者 max'],
         'description' => '哪些流量计入配额 / what counts against the quota'],
        ['type' => 'dropdown', 'name' => '超额处理 Over quota', 'key' => 'traffic_action', 'default' => 'throttle',
         'options' => ['throttle' => '限速 throttle', 'suspend' => '暂停 suspend'],
         'description' => '超出配额后 / past the quota'],
        ['type' => 'text', 'name' => '端口数量 Ports', 'key' => 'ports', 'default' => '10',
         'description' => '分配的连续端口数 (tcp+udp), 0 不分配 / consecutive host ports (tcp+udp); 0: none'],
        ['type' => 'dropdown', 'name' => 'SSH 端口 SSH port', 'key' => 'ssh_port', 'default' => 'auto',
         'options' => ['auto' => '自动分配 auto', 'none' => '不分配 none'],
         'description' => '转发到容器 22 端口的主机端口 / a host port forwarded to the container\'s 22'],
    ];
}

// -- the server's connection --------------------------------------------------------------------

/** [base URL, "host:port" for messages, host] from the server fields ZJMF passes. */
function incusapiweb_endpoint($params)
{
    $host = trim((string)($params['server_host'] ?? ''));
    if ($host === '') {
        $host = trim((string)($params['server_ip'] ?? ''));
    }
    $scheme = 'https';
    $port = trim((string)($params['port'] ?? ''));
    if (preg_match('#^(https?)://#i', $host, $match)) {
        if (strtolower($match[1]) !== 'https') {
            throw new RuntimeException('只支持 HTTPS（X-API-Hash 不能明文传输）/ HTTPS only (the X-API-Hash never travels in clear): '
                . $host);
        }
        $parts = parse_url($host);
        $host = $parts['host'] ?? '';
        if (!empty($parts['port'])) {
            $port = (string)$parts['port'];
        } elseif ($port === '') {
            $port = '443';
        }
    }
    $host = trim($host, '[]/ ');
    if ($port === '' || !ctype_digit($port)) {
        $port = (string)INCUSAPIWEB_DEFAULT_PORT;
    }
    $shown = strpos($host, ':') !== false ? "[$host]:$port" : "$host:$port";
    return [$scheme . '://' . $shown, $shown, $host];
}

/** The cURL TLS options for the seller's choice in the server's 用户名 field (see the header). */
function incusapiweb_tls_options($params)
{
    $setting = trim((string)($params['server_username'] ?? ''));
    if ($setting === '') {
        return [CURLOPT_SSL_VERIFYPEER => true, CURLOPT_SSL_VERIFYHOST => 2];
    }
    if (strtolower($setting) === 'insecure') {
        return [CURLOPT_SSL_VERIFYPEER => false, CURLOPT_SSL_VERIFYHOST => 0];
    }
    if (stripos($setting, 'sha256//') === 0) {
        if (!defined('CURLOPT_PINNEDPUBLICKEY')) {
            throw new RuntimeException('此 PHP 的 cURL 不支持公钥固定，请改用 CA 文件 / this PHP\'s cURL cannot pin a public key: '
                . 'give a CA file instead');
        }
        // The key is the identity: the self-signed certificate has no CA to check, and the name the
        // seller reaches it by need not be in it. cURL hangs up before sending anything when the key differs.
        return [CURLOPT_SSL_VERIFYPEER => false, CURLOPT_SSL_VERIFYHOST => 0, CURLOPT_PINNEDPUBLICKEY => $setting];
    }
    if ($setting[0] === '/') {
        if (!is_readable($setting)) {
            throw new RuntimeException("CA 文件不可读 / the CA file cannot be read: $setting");
        }
        return [CURLOPT_SSL_VERIFYPEER => true, CURLOPT_SSL_VERIFYHOST => 2, CURLOPT_CAINFO => $setting];
    }
    throw new RuntimeException('服务器“用户名”字段应为公钥固定值 sha256//...（init_db.py 打印的 TLS public key pin）、CA 文件路径、'
        . '留空或 insecure / the server\'s username field takes the public key pin sha256//... (init_db.py\'s "TLS public key '
        . 'pin"), a CA file path, nothing, or insecure');
}

/**
 * One call of the service. Returns ['ok' => bool, 'code' => HTTP status, 'data' => the JSON answer (array),
 * 'msg' => the service's message, or what went wrong on the way].
 */
function incusapiweb_request($params, $method, $path, $fields = [], $timeout = INCUSAPIWEB_TIMEOUT)
{
    [$base, $shown] = incusapiweb_endpoint($params);
    $hash = trim((string)($params['accesshash'] ?? ''));
    $fields = array_filter($fields, function ($value) {
        return $value !== null && $value !== '';
    });
    $url = $base . $path;
    if ($method === 'GET' && $fields) {
        $url .= '?' . http_build_query($fields);
    }
    $curl = curl_init();
    $options = [
        CURLOPT_URL            => $url,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => INCUSAPIWEB_CONNECT_TIMEOUT,
        CURLOPT_TIMEOUT        => $timeout,
        CURLOPT_FOLLOWLOCATION => false,
        CURLOPT_PROXY          => '',
        CURLOPT_HTTPHEADER     => ['X-API-Hash: ' . $hash, 'Accept: application/json', 'Accept-Language: zh'],
        CURLOPT_USERAGENT      => 'incus-api-web ZJMF module',
    ] + incusapiweb_tls_options($params);
    if ($method !== 'GET') {
        $options[CURLOPT_POST] = true;
        $options[CURLOPT_POSTFIELDS] = http_build_query($fields);
    }
    curl_setopt_array($curl, $options);
    $body = curl_exec($curl);
    $errno = curl_errno($curl);
    $error = curl_error($curl);
    $code = (int)curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    $connected = (float)curl_getinfo($curl, CURLINFO_CONNECT_TIME) > 0;
    curl_close($curl);
    if ($errno) {
        if ($errno === CURLE_OPERATION_TIMEDOUT && $connected) {
            $msg = "incus-api-web ($shown) 未在 {$timeout} 秒内回答 / did not answer within {$timeout} s: $error";
        } elseif ($errno === 90) {   // CURLE_SSL_PINNEDPUBKEYNOTMATCH
            $msg = "incus-api-web ($shown) 的证书公钥与固定值不符，已拒绝连接 / refused: the certificate's public key "
                . "does not match the pin: $error";
        } else {
            $msg = "无法连接 incus-api-web ($shown) / cannot reach incus-api-web ($shown): $error";
        }
        return ['ok' => false, 'code' => 0, 'data' => [], 'msg' => $msg];
    }
    $data = json_decode((string)$body, true);
    if (!is_array($data)) {
        $text = trim(strip_tags(substr((string)$body, 0, 300)));
        return ['ok' => false, 'code' => $code, 'data' => [],
                'msg' => "incus-api-web ($shown) HTTP $code: " . ($text !== '' ? $text : '空回答 / empty answer')];
    }
    $ok = $code >= 200 && $code < 300 && ($data['status'] ?? 'success') !== 'error';
    $msg = isset($data['message']) ? (string)$data['message'] : ($ok ? 'OK' : "HTTP $code");
    return ['ok' => $ok, 'code' => $code, 'data' => $data, 'msg' => $msg];
}

function incusapiweb_name($params)
{
    $id = (int)($params['hostid'] ?? 0);
    if ($id <= 0) {
        throw new RuntimeException('缺少 hostid / no hostid in the parameters');
    }
    return 'vps' . $id;
}

/** ZJMF's shape from one service answer. */
function incusapiweb_result($res)
{
    return ['status' => $res['ok'] ? 'success' : 'error', 'msg' => $res['msg']];
}

/** Runs $body; any \Throwable becomes ZJMF's error shape (never a PHP error on the page). */
function incusapiweb_guard(callable $body)
{
    try {
        return $body();
    } catch (\Throwable $e) {
        return ['status' => 'error', 'msg' => $e->getMessage()];
    }
}

function incusapiweb_option($params, $key)
{
    $options = $params['configoptions'] ?? [];
    if (!is_array($options) || !array_key_exists($key, $options)) {
        return null;
    }
    $value = $options[$key];
    if (is_array($value)) {
        $value = reset($value);
    }
    $value = trim((string)$value);
    return $value === '' ? null : $value;
}

const INCUSAPIWEB_PLAN = ['cpu', 'memory', 'swap', 'disk', 'ingress', 'egress', 'processes',
                          'traffic_quota', 'traffic_direction', 'traffic_action'];

function incusapiweb_plan($params)
{
    $plan = [];
    foreach (INCUSAPIWEB_PLAN as $key) {
        $value = incusapiweb_option($params, $key);
        if ($value !== null) {
            $plan[$key] = $value;
        }
    }
    return $plan;
}

function incusapiweb_store_password($password)
{
    return function_exists('cmf_encrypt') ? cmf_encrypt($password) : $password;
}

/** Writes the host record; a column this ZJMF lacks leaves the core fields written. Returns '' or the problem. */
function incusapiweb_update_host($params, $fields)
{
    if (!class_exists('think\\Db') || empty($params['hostid'])) {
        return '';
    }
    try {
        Db::name('host')->where('id', (int)$params['hostid'])->update($fields);
        return '';
    } catch (\Throwable $e) {
        $core = array_intersect_key($fields, array_flip(['dedicatedip', 'username', 'password']));
        try {
            if ($core) {
                Db::name('host')->where('id', (int)$params['hostid'])->update($core);
            }
        } catch (\Throwable $ignored) {
        }
        return $e->getMessage();
    }
}

// -- provisioning -------------------------------------------------------------------------------

function incusapiweb_TestLink($params)
{
    try {
        $res = incusapiweb_request($params, 'GET', '/traffic', [], 15);
        $ok = $res['ok'];
        $msg = $ok ? '连接成功 / connected: ' . $res['msg'] : '连接失败 / failed: ' . $res['msg'];
    } catch (\Throwable $e) {
        [$ok, $msg] = [false, '连接失败 / failed: ' . $e->getMessage()];
    }
    return ['status' => 200, 'data' => ['server_status' => $ok ? 1 : 0, 'msg' => $msg]];
}

function incusapiweb_CreateAccount($params)
{
    return incusapiweb_guard(function () use ($params) {
        $name = incusapiweb_name($params);
        $image = incusapiweb_option($params, 'image');
        if ($image === null) {
            return ['status' => 'error', 'msg' => '产品未设置镜像 / the product has no image set'];
        }
        $password = (string)($params['password'] ?? '');
        $fields = ['name' => $name, 'image' => $image, 'password' => $password] + incusapiweb_plan($params);
        if ((incusapiweb_option($params, 'ssh_port') ?? 'auto') !== 'none') {
            $fields['ssh_port'] = 'auto';
        }
        $ports = (int)(incusapiweb_option($params, 'ports') ?? 0);
        if ($ports > 0) {
            $fields['ports'] = $ports;
        }
        $res = incusapiweb_request($params, 'POST', '/container/create', $fields, INCUSAPIWEB_LONG_TIMEOUT);
        if (!$res['ok']) {
            return incusapiweb_result($res);
        }
        $data = $res['data'];
        [, , $serverHost] = incusapiweb_endpoint($params);
        $host = (string)($data['ssh']['host'] ?? '');
        if ($host === '') {
            $host = $serverHost;
        }
        $update = ['dedicatedip' => $host, 'username' => 'root'];
        $given = $data['password'] ?? ($password !== '' ? $password : null);
        if ($given !== null) {
            $update['password'] = incusapiweb_store_password($given);
        }
        if (!empty($data['ssh']['port'])) {
            $update['port'] = (int)$data['ssh']['port'];
        }
        if (!empty($data['ports']['start'])) {
            $update['assignedips'] = $host . ':' . $data['ports']['start'] . '-' . $data['ports']['end'];
        }
        $problem = incusapiweb_update_host($params, $update);
        $msg = $res['msg'];
        if ($problem !== '') {
            $msg .= " (写回主机记录失败 / the host record was not fully written: $problem)";
        }
        return ['status' => 'success', 'msg' => $msg];
    });
}

function incusapiweb_action($params, $action, $timeout = INCUSAPIWEB_TIMEOUT, $extra = [])
{
    return incusapiweb_guard(function () use ($params, $action, $timeout, $extra) {
        $res = incusapiweb_request($params, 'POST', '/container/' . incusapiweb_name($params) . '/action',
                                   ['action' => $action] + $extra, $timeout);
        return incusapiweb_result($res);
    });
}

function incusapiweb_SuspendAccount($params)
{
    return incusapiweb_action($params, 'suspend', 120);
}

function incusapiweb_UnsuspendAccount($params)
{
    return incusapiweb_action($params, 'unsuspend', 120);
}

function incusapiweb_TerminateAccount($params)
{
    return incusapiweb_action($params, 'delete', 120);
}

function incusapiweb_On($params)
{
    return incusapiweb_action($params, 'start');
}

function incusapiweb_Off($params)
{
    return incusapiweb_action($params, 'stop', 120);
}

function incusapiweb_Reboot($params)
{
    return incusapiweb_action($params, 'restart', 120);
}

function incusapiweb_HardOff($params)
{
    return incusapiweb_Off($params);
}

function incusapiweb_HardReboot($params)
{
    return incusapiweb_Reboot($params);
}

/** ZJMF's reinstall: the image in reinstall_os; root keeps the host's password (a new one when it has none). */
function incusapiweb_Reinstall($params)
{
    return incusapiweb_guard(function () use ($params) {
        $image = trim((string)($params['reinstall_os'] ?? ''));
        if ($image === '') {
            $image = (string)incusapiweb_option($params, 'image');
        }
        if ($image === '') {
            return ['status' => 'error', 'msg' => '未选择系统 / no image chosen (reinstall_os)'];
        }
        $password = (string)($params['password'] ?? '');
        $res = incusapiweb_request($params, 'POST', '/container/' . incusapiweb_name($params) . '/action',
                                   ['action' => 'reinstall', 'image' => $image, 'password' => $password],
                                   INCUSAPIWEB_LONG_TIMEOUT);
        if ($res['ok'] && !empty($res['data']['password'])) {
            incusapiweb_update_host($params, ['password' => incusapiweb_store_password($res['data']['password'])]);
        }
        return incusapiweb_result($res);
    });
}

function incusapiweb_CrackPassword($params, $new_pass)
{
    return incusapiweb_guard(function () use ($params, $new_pass) {
        $res = incusapiweb_request($params, 'POST', '/container/' . incusapiweb_name($params) . '/password',
                                   ['password' => (string)$new_pass], 120);
        if ($res['ok']) {
            incusapiweb_update_host($params, ['password' => incusapiweb_store_password((string)$new_pass)]);
        }
        return incusapiweb_result($res);
    });
}

/** Changes the plan live: the fields that differ from old_configoptions (all set ones when ZJMF gives no old). */
function incusapiweb_ChangePackage($params)
{
    return incusapiweb_guard(function () use ($params) {
        $plan = incusapiweb_plan($params);
        if (isset($params['old_configoptions']) && is_array($params['old_configoptions'])) {
            $old = incusapiweb_plan(['configoptions' => $params['old_configoptions']]);
            $plan = array_filter($plan, function ($value, $key) use ($old) {
                return !array_key_exists($key, $old) || (string)$old[$key] !== (string)$value;
            }, ARRAY_FILTER_USE_BOTH);
        }
        if (!$plan) {
            return ['status' => 'success', 'msg' => '套餐限制没有变化 / the plan\'s limits are unchanged'];
        }
        $res = incusapiweb_request($params, 'POST', '/container/' . incusapiweb_name($params) . '/limits', $plan, 120);
        return incusapiweb_result($res);
    });
}

function incusapiweb_Status($params)
{
    return incusapiweb_guard(function () use ($params) {
        $res = incusapiweb_request($params, 'GET', '/container/' . incusapiweb_name($params) . '/info');
        if (!$res['ok']) {
            return incusapiweb_result($res);
        }
        return ['status' => 'success', 'data' => incusapiweb_power($res['data'])];
    });
}

/** ZJMF's status data: on / off / suspend (or unknown), with its words. */
function incusapiweb_power($info)
{
    $status = strtolower((string)($info['status'] ?? ''));
    if (!empty($info['suspended'])) {
        return ['status' => 'suspend', 'des' => '已暂停 Suspended'];
    }
    if ($status === 'running') {
        return ['status' => 'on', 'des' => '运行中 Running'];
    }
    if ($status === 'stopped') {
        return ['status' => 'off', 'des' => '已关机 Stopped'];
    }
    return ['status' => 'unknown', 'des' => $status !== '' ? $info['status'] : '未知 Unknown'];
}

/** The console: a one-time link (60 s) to the container's root terminal. */
function incusapiweb_Vnc($params)
{
    return incusapiweb_guard(function () use ($params) {
        $res = incusapiweb_request($params, 'POST', '/container/' . incusapiweb_name($params) . '/console_token');
        if (!$res['ok']) {
            return incusapiweb_result($res);
        }
        [$base] = incusapiweb_endpoint($params);
        return ['status' => 'success', 'msg' => $res['msg'], 'url' => $base . $res['data']['url']];
    });
}

/** The customer's control panel: a one-time link (5 minutes) that signs the browser in for this container. */
function incusapiweb_ControlPanel($params)
{
    return incusapiweb_guard(function () use ($params) {
        $res = incusapiweb_request($params, 'POST', '/container/' . incusapiweb_name($params) . '/customer_link');
        if (!$res['ok']) {
            return incusapiweb_result($res);
        }
        [$base] = incusapiweb_endpoint($params);
        return ['status' => 'success', 'msg' => $res['msg'], 'url' => $base . $res['data']['url']];
    });
}

function incusapiweb_AllowFunction()
{
    return ['client' => ['ControlPanel', 'Vnc'], 'admin' => ['ControlPanel', 'Vnc']];
}

// -- the client area ----------------------------------------------------------------------------

function incusapiweb_ClientArea($params)
{
    return ['info' => ['name' => '实例信息 Overview']];
}

function incusapiweb_bytes($bytes)
{
    $bytes = (float)$bytes;
    foreach (['TB' => 1e12, 'GB' => 1e9, 'MB' => 1e6, 'KB' => 1e3] as $unit => $size) {
        if ($bytes >= $size) {
            return round($bytes / $size, 2) . ' ' . $unit;
        }
    }
    return (int)$bytes . ' B';
}

/** Every variable the template names, so that none is ever undefined. */
function incusapiweb_client_defaults($params)
{
    return ['error' => '', 'status' => '', 'ssh' => '', 'ssh_command' => '', 'username' => 'root',
            'password' => (string)($params['password'] ?? ''), 'ports' => '', 'traffic' => '', 'ip' => '', 'name' => ''];
}

/** The page's facts, as plain text (the template engine escapes them). */
function incusapiweb_client_vars($params)
{
    $vars = incusapiweb_client_defaults($params);
    $name = incusapiweb_name($params);
    $vars['name'] = $name;
    $res = incusapiweb_request($params, 'GET', '/container/' . $name . '/info', [], 15);
    if (!$res['ok']) {
        $vars['error'] = $res['msg'];
        return $vars;
    }
    $info = $res['data'];
    $vars['status'] = incusapiweb_power($info)['des'];
    $vars['ip'] = (string)($info['ip'] ?? '');
    if (!empty($info['ssh']['port'])) {
        $host = (string)($info['ssh']['host'] ?? '') ?: incusapiweb_endpoint($params)[2];
        $vars['ssh'] = $host . ':' . $info['ssh']['port'];
        $vars['ssh_command'] = 'ssh root@' . $host . ' -p ' . $info['ssh']['port'];
    }
    if (!empty($info['port_block']['start'])) {
        $block = $info['port_block'];
        $vars['ports'] = $block['start'] . '-' . $block['end'] . ' (' . $block['count'] . ', tcp+udp)';
    }
    $traffic = $info['traffic'] ?? null;
    if (is_array($traffic)) {
        $used = incusapiweb_bytes($traffic['counted_bytes'] ?? 0);
        $quota = $traffic['quota_bytes'] ?? null;
        $vars['traffic'] = $quota === null ? "$used / 不限 unlimited"
            : $used . ' / ' . incusapiweb_bytes($quota) . ' (' . round((float)($traffic['percent'] ?? 0), 1) . '%)';
        if (!empty($traffic['enforced'])) {
            $vars['traffic'] .= ' — ' . ($traffic['enforced'] === 'throttle' ? '已限速 throttled' : '已暂停 suspended');
        }
    }
    return $vars;
}

/** A page that sends the browser on to $url (the ZJMF page's buttons open ?action=panel / ?action=console). */
function incusapiweb_redirect_page($url)
{
    $safe = htmlspecialchars($url, ENT_QUOTES);
    return '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=' . $safe . '">'
        . '<a href="' . $safe . '">' . $safe . '</a>';
}

function incusapiweb_ClientAreaOutput($params, $key)
{
    $action = $_GET['action'] ?? '';
    if ($action === 'panel' || $action === 'console') {
        $res = $action === 'panel' ? incusapiweb_ControlPanel($params) : incusapiweb_Vnc($params);
        if (($res['status'] ?? '') === 'success') {
            if (!headers_sent()) {
                header('Location: ' . $res['url'], true, 302);
                header('Cache-Control: no-store');
            }
            echo incusapiweb_redirect_page($res['url']);
        } else {
            echo '<!doctype html><meta charset="utf-8"><p>' . htmlspecialchars($res['msg'], ENT_QUOTES) . '</p>';
        }
        exit;
    }
    try {
        $vars = incusapiweb_client_vars($params);
    } catch (\Throwable $e) {
        $vars = ['error' => $e->getMessage()] + incusapiweb_client_defaults($params);
    }
    return ['template' => 'templates/info.html', 'vars' => $vars];
}
