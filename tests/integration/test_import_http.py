"""Uploads over real HTTP to the real app: the size limit is enforced by the server while it
reads the body, and an upload is deleted once the import has handled it."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.auth import CLI, UserAdmin
from backend.chat.conversations import MAX_IMPORT_BYTES
from backend.store.database import Store
from tests.conftest import STAFF_PASSWORD
from tests.support.app_process import ADMIN_PASSWORD, AppProcess
from tests.support.conversation_exports import export, turns
from tests.support.gradio_http import GradioHTTP

UPLOAD = "/gradio_api/upload"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    data_dir = tmp_path_factory.mktemp("import-http")
    with Store(data_dir / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
        UserAdmin(store).add_user(CLI, "staff", STAFF_PASSWORD, "staff")
    uploads = data_dir / "gradio-uploads"
    with AppProcess(data_dir, extra_env={"GRADIO_TEMP_DIR": str(uploads)}) as running:
        yield running


@pytest.fixture
def staff(app: AppProcess) -> Iterator[GradioHTTP]:
    client = GradioHTTP(app.url, "staff", STAFF_PASSWORD)
    yield client
    client.close()


def uploads_holding(app: AppProcess, marker: bytes) -> list[Path]:
    folder = app.data_dir / "gradio-uploads"
    return [p for p in folder.rglob("*") if p.is_file() and marker in p.read_bytes()]


def upload(staff: GradioHTTP, name: str, body: bytes) -> str:
    response = staff.client.post(UPLOAD, files={"files": (name, body, "application/json")})
    assert response.status_code == 200, response.text
    [path] = response.json()
    return path


def import_upload(staff: GradioHTTP, path: str) -> dict:
    file_data = {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}
    return staff.call(staff.fn_index("chat_import"), [file_data])


def test_an_upload_over_the_limit_is_refused_before_the_body_is_read(app, staff):
    """Declare a 50 MB body, send 6 MB of it, and the server answers 413 without the rest."""
    boundary = "hearthboundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.json"'
            "\r\nContent-Type: application/json\r\n\r\n").encode()  # fmt: skip
    declared = 50 * 1024 * 1024
    cookies = "; ".join(f"{c.name}={c.value}" for c in staff.client.cookies.jar)
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60)
    conn.putrequest("POST", UPLOAD)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(declared))
    conn.putheader("Cookie", cookies)
    conn.endheaders()
    conn.send(head)
    chunk = b"Z" * (256 * 1024)
    sent = len(head)
    try:
        while sent < MAX_IMPORT_BYTES + 1024 * 1024:
            conn.send(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: what we want; its answer is still there to read
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert sent < declared
    assert response.status == 413, body
    assert f"maximum allowed size of {MAX_IMPORT_BYTES} bytes" in body
    assert uploads_holding(app, b"Z" * 1024) == []  # the partial upload was not kept
    assert staff.client.get("/gradio_api/info").status_code == 200  # the app still answers


def test_an_upload_at_the_limit_is_accepted_by_the_server(app, staff):
    path = upload(staff, "exact.json", b" " * MAX_IMPORT_BYTES)
    assert Path(path).stat().st_size == MAX_IMPORT_BYTES


def test_an_imported_upload_is_deleted_and_the_chat_is_stored(app, staff):
    marker = b"import-marker-6d1f"
    body = export([{"role": "user", "content": marker.decode()}, *turns(3)])
    path = upload(staff, "chat.json", body)
    assert uploads_holding(app, marker) == [Path(path)]  # the check below can see an upload
    result = import_upload(staff, path)
    assert result.get("success") is True, result
    assert uploads_holding(app, marker) == []
    assert not Path(path).parent.exists()  # Gradio's folder for that one upload went too
    with Store(app.data_dir / "hearth.db") as store:
        user = store.get_user_by_name("staff")
        [hit] = store.search(user.id, marker.decode())
        assert store.get_conversation(user.id, hit.conversation_id).message_count == 4


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[" * 100_000, "The file&#x27;s JSON is nested too deeply to be an export."),
        (export(turns(5_001)), "The export holds 5,001 messages; an import may hold at most"),
    ],
    ids=["deeply nested", "too many messages"],
)
def test_a_refused_import_says_why_and_its_upload_is_deleted(app, staff, body, error):
    path = upload(staff, "bad.json", body)
    result = import_upload(staff, path)
    assert result.get("success") is False, result
    assert error in result["output"]["error"]
    assert not Path(path).exists()
