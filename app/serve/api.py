"""The HTTP API over a JobQueue (FastAPI): submit, list, follow, fetch and cancel jobs.

Every request, the OpenAPI description included, needs `Authorization: Bearer <token>` (BearerAuth, checked
before anything is read); bodies over max_body bytes are refused with 413 before they are read whole (FastAPI's
max_body_size); a bad job is a 400 whose detail names the field (InvalidRequest's message).
"""

from __future__ import annotations

import secrets
import shutil
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.serve.job_request import parse_job, request_schema
from app.serve.jobs import Job, JobQueue

EVENT_WAIT_SECONDS = 1.0  # how long an event stream waits for news before it looks again (and at its client)
# The other calls are quick and run on the event loop, so they answer however many event streams (each one waits
# on a thread of the pool) are open.
MEDIA_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif"}
DESCRIPTION = (
    "Kinemo's engine over HTTP. POST a request to /v1/jobs (pictures in base64 fields such as image_data), "
    "follow /v1/jobs/{id}/events (server-sent events), fetch /v1/jobs/{id}/result once it is done. Jobs run one "
    "at a time; every call needs the bearer token `kinemo serve` printed."
)

router = APIRouter(prefix="/v1")


class BearerAuth:
    """ASGI middleware: a request without the server's bearer token is answered 401 before its body is read."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not secrets.compare_digest(given, self.expected):
                response = JSONResponse(
                    {"detail": "a bearer token is needed: Authorization: Bearer <the token kinemo serve printed>"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(queue: JobQueue, token: str, max_body: int) -> BearerAuth:
    """The application serving queue's jobs to holders of token: BearerAuth around the FastAPI app, so a caller
    without the token learns nothing, not even that its body is too large."""
    from export.metadata import software_version

    app = FastAPI(
        title="Kinemo",
        version=software_version(),
        description=DESCRIPTION,
        max_body_size=max_body,
        # documents the scheme in the OpenAPI description; BearerAuth enforces it, on every path
        dependencies=[Depends(HTTPBearer(auto_error=False))],
    )
    app.state.queue = queue
    app.include_router(router)
    return BearerAuth(app, token)


async def find_job(job_id: str, request: Request) -> Job:
    job = request.app.state.queue.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


FoundJob = Annotated[Job, Depends(find_job)]


@router.post(
    "/jobs",
    status_code=201,
    summary="Queue a job",
    responses={400: {"description": "a bad field, named"}, 413: {"description": "the body is too large"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": request_schema()}}}},
)
async def submit_job(request: Request, response: Response) -> dict:
    queue: JobQueue = request.app.state.queue
    body = await request.body()  # max_body_size has refused a larger one already
    job_id, folder = queue.new_folder()
    try:
        spec = await run_in_threadpool(parse_job, body, folder, queue.options)
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        from engine.api.errors import KinemoError

        if isinstance(exc, KinemoError):
            raise HTTPException(400, str(exc)) from None
        raise
    job = queue.submit(job_id, folder, spec)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job.summary()


@router.get("/jobs", summary="All jobs, oldest first")
async def list_jobs(request: Request) -> dict:
    return {"jobs": [job.summary() for job in request.app.state.queue.all()]}


@router.get("/jobs/{job_id}", summary="A job's state, progress and error")
async def get_job(job: FoundJob) -> dict:
    return job.summary()


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse, summary="A job's events as they come")
def job_events(request: Request, job: FoundJob, last_event_id: Annotated[str | None, Header()] = None):
    """Server-sent events: queued, running, loaded, notice, progress, preview, frames, then done, failed or
    cancelled, after which the stream ends. Each event's id is its index: a client that reconnects with
    Last-Event-ID gets the events after it."""
    queue: JobQueue = request.app.state.queue
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else -1
    while True:
        events = queue.events_after(job, after, EVENT_WAIT_SECONDS)
        for index, kind, data in events:
            yield ServerSentEvent(event=kind, data=data, id=str(index))
            after = index
        if job.finished and not events:
            return


@router.get(
    "/jobs/{job_id}/result",
    response_class=FileResponse,
    summary="The finished clip",
    responses={409: {"description": "the job is not done"}},
)
async def job_result(job: FoundJob):
    if job.state != "done":
        reason = f": {job.error}" if job.error else ""
        raise HTTPException(409, f"job {job.id} is {job.state}{reason}; a result is there once a job is done")
    fmt = job.spec.settings.format
    return FileResponse(job.output, media_type=MEDIA_TYPES[fmt], filename=f"kinemo-{job.id}{job.output.suffix}")


@router.delete("/jobs/{job_id}", summary="Cancel a job (a finished one is forgotten, its files removed)")
async def cancel_job(request: Request, job: FoundJob) -> dict:
    request.app.state.queue.cancel(job.id)
    return job.summary()
