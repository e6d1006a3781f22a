# Copyright (c) mmsaal contributors. All rights reserved.
"""A real Label Studio server for tests and screenshots, offline on
127.0.0.1.

Label Studio (pinned) lives in its own virtual environment under
``~/.cache/mmsaal/label-studio`` (``MMSAAL_LABEL_STUDIO_HOME``), outside the
project's ``.venv``, so its dependencies (Django, ...) never meet ours. A
template data dir, with its database migrated and one user whose token is
fixed, is made once; each server starts from a copy of it in seconds
(a fresh data dir spends over a minute migrating).

    with LabelStudioServer(document_root) as server:
        server.url, server.token   # http://127.0.0.1:PORT, the API token
"""
import contextlib
import fcntl
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, Optional

VERSION = '1.23.2'
HOME = os.environ.get('MMSAAL_LABEL_STUDIO_HOME',
                      osp.expanduser('~/.cache/mmsaal/label-studio'))
USERNAME = 'annotator@mmsaal.test'
PASSWORD = 'mmsaal-annotator'
TOKEN = 'mmsaal0test0token0label0studio'


def venv() -> str:
    return osp.join(HOME, f'venv-{VERSION}')


def executable() -> str:
    return osp.join(venv(), 'bin', 'label-studio')


@contextlib.contextmanager
def _locked(name: str):
    """One installer at a time (pytest workers share the cache)."""
    os.makedirs(HOME, exist_ok=True)
    with open(osp.join(HOME, f'.{name}.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def install() -> str:
    """Label Studio's ``label-studio`` command, installed once (about
    2-3 minutes and 1 GB from PyPI)."""
    with _locked('install'):
        done = osp.join(venv(), '.installed')
        if not osp.exists(done):
            shutil.rmtree(venv(), ignore_errors=True)
            base = getattr(sys, '_base_executable', sys.executable)
            subprocess.run([base, '-m', 'venv', venv()], check=True)
            subprocess.run(
                [osp.join(venv(), 'bin', 'python'), '-m', 'pip', 'install',
                 '-q', '--disable-pip-version-check',
                 f'label-studio=={VERSION}'], check=True)
            open(done, 'w').close()
    return executable()


def environment(data_dir: str, document_root: str) -> Dict[str, str]:
    """The server's environment: a fixed user and token, local files
    served from ``document_root``, no outbound calls."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('LABEL_STUDIO', 'PYTHON', 'VIRTUAL_ENV'))}
    env.update(
        PATH=osp.join(venv(), 'bin') + os.pathsep + env.get('PATH', ''),
        LABEL_STUDIO_BASE_DATA_DIR=data_dir,
        LABEL_STUDIO_USERNAME=USERNAME,
        LABEL_STUDIO_PASSWORD=PASSWORD,
        LABEL_STUDIO_USER_TOKEN=TOKEN,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN='true',
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK='true',
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED='true',
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=document_root,
        SENTRY_DSN='', FRONTEND_SENTRY_DSN='', LATEST_VERSION_CHECK='false',
        COLLECT_ANALYTICS='false')
    return env


def template() -> str:
    """A migrated data dir with the user and its token (made once, about
    40-60 s)."""
    command = install()
    folder = osp.join(HOME, f'template-{VERSION}')
    with _locked('template'):
        if not osp.exists(osp.join(folder, '.initialised')):
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            subprocess.run(
                [command, 'init', '--quiet', '--no-browser',
                 '--enable-legacy-api-token', '--username', USERNAME,
                 '--password', PASSWORD, '--user-token', TOKEN],
                env=environment(folder, folder), check=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=folder)
            open(osp.join(folder, '.initialised'), 'w').close()
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class LabelStudioServer:
    """A Label Studio server on a free 127.0.0.1 port, from a copy of the
    template data dir, serving the local files under ``document_root``.

    Args:
        document_root (str): The folder whose files tasks may show.
        data_dir (str, optional): Where its database goes. Defaults to a
            temporary folder, removed at the end.
    """

    def __init__(self, document_root: str,
                 data_dir: Optional[str] = None) -> None:
        self.document_root = osp.abspath(document_root)
        self._own = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix='label-studio-')
        self.token = TOKEN
        self.process = None
        self.url = ''
        self.log = osp.join(self.data_dir, 'server.log')

    def start(self, timeout: float = 120) -> 'LabelStudioServer':
        source = template()
        shutil.copytree(source, self.data_dir, dirs_exist_ok=True)
        port = free_port()
        self.url = f'http://127.0.0.1:{port}'
        with open(self.log, 'w') as log:
            self.process = subprocess.Popen(
                [executable(), 'start', '--no-browser', '--internal-host',
                 '127.0.0.1', '-p', str(port)],
                env=environment(self.data_dir, self.document_root),
                stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir,
                start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + '/health',
                                            timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        with open(self.log) as f:
            raise RuntimeError(f'Label Studio did not start at {self.url}:\n'
                               + f.read()[-3000:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.process = None

    def __enter__(self) -> 'LabelStudioServer':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._own:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# ------------------------------------------------------------ screenshots
def login_cookies(server: LabelStudioServer) -> Dict[str, str]:
    """The cookies of a browser session of the server's user (its login
    form, as a person submits it)."""
    import http.cookiejar
    import re
    import urllib.parse
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(server.url + '/user/login/', timeout=30).read()
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    form = urllib.parse.urlencode(dict(
        email=USERNAME, password=PASSWORD,
        csrfmiddlewaretoken=token.group(1).decode())).encode()
    opener.open(urllib.request.Request(
        server.url + '/user/login/', data=form,
        headers={'Referer': server.url + '/user/login/'}), timeout=30)
    cookies = {c.name: c.value for c in jar}
    if 'sessionid' not in cookies:
        raise RuntimeError('the login to Label Studio did not give a session')
    return cookies


class _WebSocket:
    """Just enough of RFC 6455 to speak the DevTools protocol (text
    frames, client-masked, no extensions)."""

    def __init__(self, url: str) -> None:
        import base64
        import urllib.parse
        parts = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port),
                                             timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f'GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n'
             f'Upgrade: websocket\r\nConnection: Upgrade\r\n'
             f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'
             ).encode())
        head = b''
        while b'\r\n\r\n' not in head:
            head += self.sock.recv(1)
        if b' 101 ' not in head.split(b'\r\n')[0]:
            raise RuntimeError(f'no websocket at {url}: {head[:200]!r}')
        self.next_id = 0

    def _read(self, n: int) -> bytes:
        data = b''
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError('the browser closed the connection')
            data += chunk
        return data

    def send(self, text: str) -> None:
        import struct
        payload = text.encode()
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack('>H', n)
        else:
            head += bytes([0x80 | 127]) + struct.pack('>Q', n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(
            b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> str:
        import struct
        message = b''
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack('>H', self._read(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', self._read(8))[0]
            payload = self._read(n)
            if first & 0x0F in (0x1, 0x0):
                message += payload
                if first & 0x80:
                    return message.decode()

    def command(self, method: str, **params) -> dict:
        import json
        self.next_id += 1
        self.send(json.dumps(dict(id=self.next_id, method=method,
                                  params=params)))
        while True:
            reply = json.loads(self.receive())
            if reply.get('id') == self.next_id:
                if 'error' in reply:
                    raise RuntimeError(f'{method}: {reply["error"]}')
                return reply.get('result', {})


def screenshot(server: LabelStudioServer, page: str, out: str,
               size=(1500, 950), settle: float = 12.0,
               browser: str = 'chromium') -> str:
    """A PNG of ``server.url + page`` (e.g. a task's labeling page) as the
    server's user sees it, taken in headless Chromium."""
    import base64
    import json
    cookies = login_cookies(server)
    port = free_port()
    profile = tempfile.mkdtemp(prefix='chromium-')
    process = subprocess.Popen(
        [shutil.which(browser) or browser, '--headless=new', '--no-sandbox',
         '--disable-gpu', '--no-first-run', f'--remote-debugging-port={port}',
         f'--user-data-dir={profile}', f'--window-size={size[0]},{size[1]}',
         'about:blank'], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(
                        f'http://127.0.0.1:{port}/json', timeout=2) as r:
                    targets = [t for t in json.load(r)
                               if t.get('type') == 'page']
                if targets:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError('headless Chromium did not start')
            time.sleep(0.5)
        tab = _WebSocket(targets[0]['webSocketDebuggerUrl'])
        for name, value in cookies.items():
            tab.command('Network.setCookie', name=name, value=value,
                        url=server.url)
        tab.command('Emulation.setDeviceMetricsOverride', width=size[0],
                    height=size[1], deviceScaleFactor=1, mobile=False)
        tab.command('Page.navigate', url=server.url + page)
        time.sleep(settle)
        shot = tab.command('Page.captureScreenshot', format='png')
        with open(out, 'wb') as f:
            f.write(base64.b64decode(shot['data']))
        return out
    finally:
        os.killpg(process.pid, 9)
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
