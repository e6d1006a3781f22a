# Copyright (c) mmsaal contributors. All rights reserved.
"""Label Studio's REST API, the few calls a round needs (standard library
HTTP, no SDK). The token comes from an environment variable only."""
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import List, Optional

from mmsaal.utils.errors import WorkDirError

TOKEN_ENV = 'LABEL_STUDIO_API_KEY'


class LabelStudioError(WorkDirError):
    """Label Studio cannot serve the round; the message names the fix."""


class LabelStudioClient:
    """The few REST calls of Label Studio's API a round needs.

    Args:
        url (str): The server, e.g. ``http://127.0.0.1:8080``.
        token_env (str): The environment variable holding the access token.
        timeout (float): Seconds a call may take.
    """

    def __init__(self, url: str, token_env: str = TOKEN_ENV,
                 timeout: float = 60) -> None:
        self.url = url.rstrip('/')
        self.token_env = token_env
        token = os.environ.get(token_env)
        if not token:
            raise LabelStudioError(
                f'${token_env} is not set: set it to the access token of '
                f'your Label Studio account (Account & Settings > Access '
                f'Token) before the run; the token is read from there only, '
                f'never from the config.')
        self._token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body=None, what: str = ''):
        """JSON of one API call, or a :class:`LabelStudioError`."""
        text = self._send(method, path, body, what)
        return json.loads(text) if text else None

    def _send(self, method: str, path: str, body=None,
              what: str = '') -> bytes:
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'Authorization': f'Token {self._token}',
                     'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                text = r.read()
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise LabelStudioError(
                    f'Label Studio at {self.url} refused the token in '
                    f'${self.token_env} ({err.code}): set it to the access '
                    f'token of an account of that server (Account & '
                    f'Settings > Access Token; with a fixed token, the server '
                    f'needs LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true).'
                ) from None
            raise LabelStudioError(
                f'Label Studio at {self.url}: {method} {path} failed with '
                f'{err.code} {err.reason}{what}') from None
        except (urllib.error.URLError, OSError) as err:
            raise LabelStudioError(
                f'cannot reach Label Studio at {self.url} '
                f'({getattr(err, "reason", err)}): start the server (label-'
                f'studio start --internal-host 127.0.0.1 -p PORT), or set '
                f'active_learning.oracle.url to where it runs.') from None
        return text

    def status(self, path: str) -> int:
        """The HTTP status of a GET (an image the server serves, ...)."""
        try:
            self._send('GET', path)
            return 200
        except LabelStudioError as err:
            for code in (404, 403, 400):
                if f' {code} ' in str(err):
                    return code
            raise

    def project_by_title(self, title: str) -> Optional[dict]:
        query = urllib.parse.urlencode(dict(title=title, page_size=1000))
        found = self.call('GET', f'/api/projects?{query}')
        for project in found.get('results', found) if isinstance(
                found, dict) else found:
            if project.get('title') == title:
                return project
        return None

    def project(self, project_id: int) -> Optional[dict]:
        try:
            return self.call('GET', f'/api/projects/{project_id}')
        except LabelStudioError as err:
            if ' 404 ' in str(err):
                return None
            raise

    def tasks(self, project_id: int) -> List[dict]:
        """Every task of a project with its annotations (the JSON export,
        which keeps each task's data)."""
        return self.call(
            'GET', f'/api/projects/{project_id}/export?exportType=JSON&'
            f'download_all_tasks=true')
