"""A small fake of Kaggle's API on http://localhost (port 80), the endpoint of the real ``kaggle``
client's own ``--local`` environment (``KK_KAGGLE_ENV=local``). It serves a competition zip, records submissions
and answers 401/403/404/429 on demand."""

from __future__ import annotations

import base64
import io
import json
import threading
import zipfile
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "/api/v1/competitions.CompetitionApiService/"
PORT = 80


class FakeKaggle:
    def __init__(self, competitions: dict[str, bytes], username: str = "alice", key: str = "secret"):
        self.competitions = competitions  # slug -> zip bytes
        self.auth = "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()
        self.failures: dict[str, list[int]] = {}  # request name -> status codes to answer next
        self.uploads: dict[str, bytes] = {}
        self.uploads_name: dict[str, str] = {}
        self.submissions: list[dict] = []
        self.scores: dict[str, tuple[str, str]] = {}  # file name -> (public, private)
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", PORT), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKaggle:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, request: str, *codes: int) -> None:
        self.failures.setdefault(request, []).extend(codes)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                name = self.path.removeprefix(SERVICE)
                fake.requests.append(name)
                body = json.loads(self._body() or b"{}")
                if self.headers.get("Authorization") != fake.auth:
                    return self._json(401, {"code": 401, "message": "Unauthenticated"})
                if fake.failures.get(name):
                    code = fake.failures[name].pop(0)
                    return self._json(code, {"code": code, "message": f"fake {code}"})
                slug = body.get("competitionName")
                if slug not in fake.competitions:
                    return self._json(404, {"code": 404, "message": "Competition not found"})
                if name == "DownloadDataFiles":
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost/files/{slug}.zip")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif name == "StartSubmissionUpload":
                    token = f"tok{len(fake.uploads) + 1}"
                    fake.uploads[token] = b""
                    fake.uploads_name[token] = body.get("fileName")
                    self._json(200, {"token": token, "createUrl": f"http://localhost/upload/{token}"})
                elif name == "CreateSubmission":
                    token = body["blobFileTokens"]
                    ref = len(fake.submissions) + 1
                    fake.submissions.append({"ref": ref, "competition": slug, "token": token,
                                             "description": body.get("submissionDescription"),
                                             "content": fake.uploads[token], "fileName": fake.uploads_name[token]})
                    self._json(200, {"message": "Successfully submitted", "ref": ref})
                elif name == "ListSubmissions":
                    subs = []
                    for s in reversed(fake.submissions):
                        public, private = fake.scores.get(s["fileName"], ("", ""))
                        subs.append({"ref": s["ref"], "fileName": s["fileName"], "description": s["description"],
                                     "date": datetime.now(UTC).isoformat(timespec="milliseconds")
                                     .replace("+00:00", "Z"),
                                     "status": "COMPLETE", "publicScore": public, "privateScore": private})
                    self._json(200, {"submissions": subs})
                else:
                    self._json(404, {"code": 404, "message": f"unknown request {name}"})

            def do_GET(self) -> None:
                slug = self.path.removeprefix("/files/").removesuffix(".zip")
                data = fake.competitions.get(slug)
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Last-Modified", formatdate(usegmt=True))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                token = self.path.removeprefix("/upload/")
                fake.uploads[token] = self._body()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


def make_zip(files: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()
