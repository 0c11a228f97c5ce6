/* The browser console: xterm.js (vendored, see static/vendor/fetch.py) on a WebSocket to the app.
   Binary frames both ways are the terminal's bytes; text frames are JSON: the page sends
   {"type":"resize","cols":C,"rows":R}, the server ends with {"type":"end","message":...}. */
(function () {
  'use strict';
  var box = document.querySelector('[data-console]');
  if (!box || !window.Terminal || !window.FitAddon) { return; }
  /* In the customer's panel the terminal opens on a click (each console takes one of the
     container's CONSOLE_PER_CONTAINER places); on the console pages, at once. */
  var opener = document.querySelector('[data-console-open]');
  if (opener) {
    opener.addEventListener('click', function () {
      opener.hidden = true;
      box.hidden = false;
      start();
    }, { once: true });
  } else {
    start();
  }

  function start() {
    var texts = JSON.parse(box.getAttribute('data-texts'));
    var state = document.querySelector('[data-console-state]');
    var again = document.querySelector('[data-console-reconnect]');
    var oneTime = box.getAttribute('data-one-time') === 'true';
    var term = new window.Terminal({
      cursorBlink: true, convertEol: false, scrollback: 5000, fontSize: 14,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace',
      theme: { background: '#11161f' }
    });
    var fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box.querySelector('[data-terminal]'));
    fit.fit();
    window.consoleTerminal = term;  // for the browser tests: they read what the shell printed
    var socket = null;
    var encoder = new TextEncoder();

    function show(text, cls) {
      state.textContent = text;
      state.className = 'console-state' + (cls ? ' ' + cls : '');
    }

    function sendResize() {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
      }
    }

    function connect() {
      var base = new URL(box.getAttribute('data-socket-url'), window.location.href);
      base.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
      base.searchParams.set('cols', term.cols);
      base.searchParams.set('rows', term.rows);
      socket = new WebSocket(base.toString());
      socket.binaryType = 'arraybuffer';
      var ended = false;
      var opened = false;
      socket.onopen = function () {
        opened = true;
        show(texts.connected, 'ok');
        again.hidden = true;
        term.focus();
      };
      socket.onmessage = function (event) {
        if (typeof event.data === 'string') {
          var message = JSON.parse(event.data);
          if (message.type === 'end') {
            ended = true;
            term.write('\r\n\x1b[33m' + message.message + '\x1b[0m\r\n');
            show(message.message, 'bad');
          }
          return;
        }
        term.write(new Uint8Array(event.data));
      };
      socket.onclose = function () {
        if (!ended) { show(opened ? texts.closed : texts.refused, 'bad'); }
        if (oneTime) {
          term.write('\r\n\x1b[33m' + texts.used + '\x1b[0m\r\n');
        } else {
          again.hidden = false;
        }
        socket = null;
      };
    }

    term.onData(function (data) {
      if (socket && socket.readyState === WebSocket.OPEN) { socket.send(encoder.encode(data)); }
    });
    term.onResize(sendResize);
    var pending = null;
    window.addEventListener('resize', function () {
      clearTimeout(pending);
      pending = setTimeout(function () { fit.fit(); }, 50);
    });
    again.addEventListener('click', function () { term.reset(); connect(); });
    connect();
  }
}());
