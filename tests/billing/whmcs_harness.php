<?php
/**
 * Runs one function of the WHMCS module (billing/whmcs/modules/servers/incusapiweb) as WHMCS
 * would: `php whmcs_harness.php request.json`, the request being
 * {"function": "CreateAccount", "params": {...}, "state": {...}}. Prints, as its last line,
 * {"result": <what incusapiweb_<function>($params) returned>, "state": <the stand-ins' state>}.
 *
 * The smallest stand-ins for what the module calls of WHMCS itself (nothing else of WHMCS):
 *  - the WHMCS constant (the module refuses to load without it);
 *  - logModuleCall(): masks the replace strings as WHMCS does (each becomes asterisks) and keeps
 *    the entry in state.log;
 *  - localAPI(): keeps the call in state.localapi; UpdateClientProduct also writes its fields to
 *    state.tblhosting[serviceid] (WHMCS encrypts servicepassword; kept as given here);
 *  - $CONFIG['Language'] (WHMCS's default language): english, or state.language;
 *  - WHMCS\Database\Capsule: table()->where()->...->update() on state.tblhosting's rows (each
 *    keyed by its id, with its server), every update also kept in state.updates.
 */

namespace WHMCS\Database {
    class Capsule
    {
        public static function table($name)
        {
            return new Query($name);
        }
    }

    class Query
    {
        private $table;
        private $wheres = [];

        public function __construct($table)
        {
            $this->table = $table;
        }

        public function where($column, $operator, $value = null)
        {
            if (func_num_args() === 2) {
                [$operator, $value] = ['=', $operator];
            }
            if ($operator !== '=') {
                throw new \LogicException("the Capsule stand-in knows only '=' (got {$operator})");
            }
            $this->wheres[$column] = $value;
            return $this;
        }

        public function update(array $values)
        {
            $state = &$GLOBALS['HARNESS_STATE'];
            $state['updates'][] = ['table' => $this->table, 'where' => $this->wheres, 'values' => $values];
            $count = 0;
            foreach ($state[$this->table] ?? [] as $id => $row) {
                $row += ['id' => (int) $id];
                $match = true;
                foreach ($this->wheres as $column => $value) {
                    if ((string) ($row[$column] ?? '') !== (string) $value) {
                        $match = false;
                    }
                }
                if ($match) {
                    $state[$this->table][$id] = array_merge($state[$this->table][$id], $values);
                    $count++;
                }
            }
            return $count;
        }
    }
}

namespace {
    define('WHMCS', true);

    function logModuleCall($module, $action, $request, $response, $processed = '', $replace = [])
    {
        $mask = function ($value) use ($replace) {
            $text = is_string($value) ? $value : json_encode($value);
            foreach ($replace as $secret) {
                if ((string) $secret !== '') {
                    $text = str_replace((string) $secret, str_repeat('*', strlen((string) $secret)), $text);
                }
            }
            return $text;
        };
        $GLOBALS['HARNESS_STATE']['log'][] = ['module' => $module, 'action' => $action, 'request' => $mask($request),
            'response' => $mask($response), 'processed' => $mask($processed)];
    }

    function localAPI($command, $values = [], $adminUser = '')
    {
        $state = &$GLOBALS['HARNESS_STATE'];
        $state['localapi'][] = ['command' => $command, 'values' => $values];
        if ($command === 'UpdateClientProduct') {
            $id = (string) $values['serviceid'];
            $state['tblhosting'][$id] = array_merge($state['tblhosting'][$id] ?? [], array_diff_key($values, ['serviceid' => 1]));
            return ['result' => 'success', 'serviceid' => $values['serviceid']];
        }
        return ['result' => 'error', 'message' => "the localAPI stand-in knows no {$command}"];
    }

    // Any PHP notice, warning or error the module lets out goes to stderr, which the tests want empty.
    error_reporting(E_ALL);
    ini_set('display_errors', 'stderr');
    ini_set('log_errors', '0');

    $request = json_decode(file_get_contents($argv[1]), true);
    $GLOBALS['HARNESS_STATE'] = $request['state'] ?: [];
    $GLOBALS['HARNESS_STATE'] += ['log' => [], 'localapi' => [], 'updates' => []];
    // WHMCS's settings ($CONFIG): its default language, english unless the state names another.
    $GLOBALS['CONFIG'] = ['Language' => $GLOBALS['HARNESS_STATE']['language'] ?? 'english'];
    require __DIR__ . '/../../billing/whmcs/modules/servers/incusapiweb/incusapiweb.php';
    $function = 'incusapiweb_' . $request['function'];
    $result = in_array($request['function'], ['MetaData', 'ConfigOptions', 'AdminCustomButtonArray', 'ClientAreaCustomButtonArray',
        'ClientAreaAllowedFunctions'], true)
        ? $function() : $function($request['params']);
    echo "\n" . json_encode(['result' => $result, 'state' => $GLOBALS['HARNESS_STATE']], JSON_UNESCAPED_SLASHES) . "\n";
}
