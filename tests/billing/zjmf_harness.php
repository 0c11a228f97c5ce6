<?php
/*
 * Runs one function of the ZJMF module (billing/zjmf/incusapiweb/incusapiweb.php) as ZJMF calls it.
 *
 * Request (argv[1], JSON): {"function": "CreateAccount", "params": {...ZJMF's $params...}, "state": {...}}
 *   state.db     the stand-in database: {"host": {"<id>": {column: value}}}
 *   state.args   extra arguments after $params (CrackPassword: [new_pass]; ClientAreaOutput: [key])
 *   state.get    $_GET (ClientAreaOutput's ?action=panel / ?action=console)
 * Prints, as its last line: {"result": <what the function returned>, "state": {...}}, the state with
 *   state.output (what the function echoed), state.php_errors (every PHP warning, notice or fatal error) and
 *   state.exited (true when it called exit, as ClientAreaOutput does for its redirects).
 *
 * The stand-ins for what ZJMF provides and the module calls (nothing else of ZJMF is here):
 *   think\Db   ThinkPHP's query builder, only Db::name($table)->where('id', $id)->update($fields) / ->find(),
 *              recording into state.db; a table's "strict" list (state.strict_columns.<table>) makes update()
 *              throw on another column, as ThinkPHP's fields_strict does.
 *   cmf_encrypt ZJMF's reversible encryption of stored passwords (AES there): here "enc:" + base64.
 */

namespace think {
    class Db
    {
        public static $state;

        public static function name($table)
        {
            return new Query($table);
        }
    }

    class Query
    {
        private $table;
        private $id;

        public function __construct($table)
        {
            $this->table = $table;
        }

        public function where($column, $value)
        {
            if ($column !== 'id') {
                throw new \Exception("stand-in Db: only where('id', ...) is modelled, not $column");
            }
            $this->id = (string)$value;
            return $this;
        }

        public function update($fields)
        {
            $strict = Db::$state['strict_columns'][$this->table] ?? null;
            if (is_array($strict)) {
                foreach (array_keys($fields) as $column) {
                    if (!in_array($column, $strict, true)) {
                        throw new \Exception("fields not exists:[$column]");
                    }
                }
            }
            $row = Db::$state['db'][$this->table][$this->id] ?? [];
            Db::$state['db'][$this->table][$this->id] = array_merge($row, $fields);
            Db::$state['updates'][] = ['table' => $this->table, 'id' => $this->id, 'fields' => $fields];
            return 1;
        }

        public function find()
        {
            return Db::$state['db'][$this->table][$this->id] ?? null;
        }
    }
}

namespace {
    function cmf_encrypt($text)
    {
        return 'enc:' . base64_encode($text);
    }

    $request = json_decode(file_get_contents($argv[1]), true);
    $state = $request['state'] ?: [];
    $state += ['db' => ['host' => []], 'updates' => []];
    \think\Db::$state = &$state;
    $_GET = $state['get'] ?? [];
    $GLOBALS['harness'] = ['errors' => [], 'result' => null, 'done' => false];

    set_error_handler(function ($severity, $message, $file, $line) {
        $GLOBALS['harness']['errors'][] = "$message at " . basename($file) . ":$line";
        return true;
    });

    register_shutdown_function(function () use (&$state) {
        $output = '';
        while (ob_get_level() > 0) {
            $output .= ob_get_clean();
        }
        $fatal = error_get_last();
        if ($fatal && in_array($fatal['type'], [E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR], true)) {
            $GLOBALS['harness']['errors'][] = $fatal['message'] . ' at ' . basename($fatal['file']) . ':' . $fatal['line'];
        }
        $state['output'] = $output;
        $state['php_errors'] = $GLOBALS['harness']['errors'];
        $state['exited'] = !$GLOBALS['harness']['done'];
        echo "\n" . json_encode(['result' => $GLOBALS['harness']['result'], 'state' => $state], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR) . "\n";
    });

    require __DIR__ . '/../../billing/zjmf/incusapiweb/incusapiweb.php';

    $function = 'incusapiweb_' . $request['function'];
    ob_start();
    $GLOBALS['harness']['result'] = $function($request['params'], ...($state['args'] ?? []));
    $GLOBALS['harness']['done'] = true;
}
