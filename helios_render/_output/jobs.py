"""The job folder: finished chunks kept beside the output, so an interrupted render resumes.

A render's job folder is ``.OUTPUT.helios-job-DIGEST`` beside its output (hidden, on the same
file system, so the joined file can be renamed over the output). It holds

* ``manifest.json``: the full digest, the owner process, and for each finished chunk its file,
  frame count, size and SHA-256;
* ``chunks/``: the finished chunk files, each with the media its page played
  (``chunk-NNNNN.ts.media.json``, for the audio mix); a chunk is recorded only after its file
  is complete, its frame count checked with ffprobe, and it is moved there;
* ``partial/``: chunks being written, and FFmpeg's logs.

Contracts:

* A rerun with the same digest reuses every recorded chunk whose file still has its size and
  SHA-256; a corrupt or truncated one is dropped and rendered again, never stitched.
* A folder for the same output with another digest (a setting or the composition changed) is
  removed, and the render starts over saying why; so is any folder with ``resume=False``.
* A URL source (whose contents are not in the digest) is resumed only with ``resume=True``.
* A folder whose lock a live render holds (another render of the same output, in any PID
  namespace or container sharing the folder) is never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from .._exceptions import EncoderError, UsageError, is_deterministic
from .._ffmpeg.ffmpeg import count_frames
from .._model.job import ChunkJob, ChunkResult, MediaRecord, dump_records, load_records
from .._model.plan import RenderPlan
from .._tempdirs import (
    OWNER_FILE,
    claim_dir,
    describe_owner,
    dir_in_use,
    owner_alive,
    release_dir,
)

__all__ = [
    "JobFolder",
    "describe_kept",
    "job_folders",
    "open_job_folder",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A finished chunk as the manifest holds it."""

    file: str
    frames: int
    size: int
    sha256: str


def job_folder_prefix(output: Path) -> str:
    """Every job folder of ``output`` starts with this."""
    return f".{output.name}.helios-job-"


def job_folders(output: Path) -> list[Path]:
    """The job folders beside ``output`` (of any digest)."""
    prefix = job_folder_prefix(output)
    try:
        return sorted(
            entry
            for entry in output.parent.iterdir()
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink()
        )
    except OSError:
        return []


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class JobFolder:
    """One render's job folder. Create it with :func:`open_job_folder`."""

    def __init__(self, path: Path, plan: RenderPlan) -> None:
        self.path = path
        self.plan = plan
        self.records: dict[int, ChunkRecord] = {}
        self.chunks_dir = path / "chunks"
        self.partial_dir = path / "partial"

    @property
    def reused_frames(self) -> int:
        """Frames of the chunks that were already finished when the render started."""
        return sum(record.frames for record in self.records.values())

    def pending_jobs(self) -> list[ChunkJob]:
        """The plan's jobs whose chunk is not finished yet, in order."""
        return [job for job in self.plan.jobs if job.index not in self.records]

    def chunk_files(self) -> list[Path]:
        """Every chunk file of the plan, in order (all must be recorded)."""
        return [self.chunks_dir / self.records[job.index].file for job in self.plan.jobs]

    def _media_file(self, file: str) -> Path:
        return self.chunks_dir / f"{file}.media.json"

    def media_records(self) -> list[list[MediaRecord]]:
        """What the page played in each chunk, in order (all must be recorded)."""
        return [
            load_records(self._media_file(self.records[job.index].file).read_text())
            for job in self.plan.jobs
        ]

    def _write_manifest(self) -> None:
        manifest = {
            "format": MANIFEST_FORMAT,
            "digest": self.plan.digest,
            "output": self.plan.output.name,
            "frames": self.plan.frames,
            "chunks": {
                str(index): {
                    "file": r.file, "frames": r.frames, "size": r.size, "sha256": r.sha256
                }
                for index, r in sorted(self.records.items())
            },
        }
        temporary = self.path / f".{MANIFEST}.tmp"
        temporary.write_text(json.dumps(manifest, indent=1))
        os.replace(temporary, self.path / MANIFEST)

    def _load(self) -> None:
        """Read the manifest and keep the chunks whose files are intact."""
        try:
            manifest = json.loads((self.path / MANIFEST).read_text())
            entries = manifest["chunks"] if manifest.get("digest") == self.plan.digest else {}
        except (OSError, ValueError, KeyError, TypeError):
            entries = {}
        jobs = {job.index: job for job in self.plan.jobs}
        for key, entry in entries.items():
            try:
                record = ChunkRecord(
                    str(entry["file"]), int(entry["frames"]), int(entry["size"]),
                    str(entry["sha256"]),
                )
                index = int(key)
            except (KeyError, TypeError, ValueError):
                continue
            path = self.chunks_dir / record.file
            job = jobs.get(index)
            intact = (
                job is not None
                and self._media_file(record.file).is_file()
                and record.file == job.file_name
                and record.frames == job.frames
                and path.is_file()
                and path.stat().st_size == record.size
                and _sha256(path) == record.sha256
            )
            if intact:
                self.records[index] = record
            else:
                logger.warning("chunk %s in %s is damaged or missing: rendering it again", key,
                               self.path.name)
                path.unlink(missing_ok=True)

    async def record(self, result: ChunkResult) -> None:
        """Check a finished chunk (its frame count, read back with ffprobe), move it into the
        folder and record it in the manifest.

        Raises:
            EncoderError: The chunk file is unreadable or holds the wrong number of frames.
        """
        job = self.plan.jobs[result.index]
        target = self.chunks_dir / job.file_name
        if result.path is not None:
            source = result.path
        else:
            assert result.data is not None
            source = self.partial_dir / f"{job.file_name}.received"
            await trio.Path(source).write_bytes(result.data)
        assert self.plan.ffprobe is not None  # a plan for a video always has one
        frames = await count_frames(self.plan.ffprobe, source)
        if frames != job.frames:
            source.unlink(missing_ok=True)
            raise EncoderError(
                f"chunk {job.index} (frames {job.start}..{job.end - 1}) holds {frames} frames, "
                f"expected {job.frames}"
            )
        sha = await trio.to_thread.run_sync(_sha256, source)
        size = source.stat().st_size
        # No checkpoint from here on: a cancellation (Ctrl+C, SIGTERM) cannot leave a chunk
        # in chunks/ that the manifest does not record.
        self._media_file(job.file_name).write_text(dump_records(result.media))
        os.replace(source, target)
        self.records[job.index] = ChunkRecord(job.file_name, job.frames, size, sha)
        self._write_manifest()

    def remove(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)
        release_dir(self.path)

    def release(self) -> None:
        """Mark the folder as no longer in use (kept for a later resume)."""
        (self.path / OWNER_FILE).unlink(missing_ok=True)
        release_dir(self.path)

    @contextmanager
    def in_use(self) -> Iterator[JobFolder]:
        """The folder for the block: removed when the block succeeds (the output is complete)
        or fails in a way a rerun would only repeat (:func:`is_deterministic`: the page threw,
        a frame never became ready, bad options); otherwise (a crash, a full disk, Ctrl+C)
        kept and released, so that a rerun resumes."""
        try:
            yield self
        except BaseException as exc:
            if is_deterministic(exc):
                self.remove()
            else:
                self.release()
            raise
        self.remove()


def _busy(folders: Iterable[Path]) -> Path | None:
    """The first folder a live render holds (its lock is held: by a process of any PID
    namespace or container that shares the folder)."""
    for folder in folders:
        in_use = dir_in_use(folder)
        if in_use is None:  # no lock file: a folder of an older helios-render
            in_use = bool(owner_alive(folder))
        if in_use:
            return folder
    return None


def open_job_folder(plan: RenderPlan, resume: bool | None) -> JobFolder:
    """The job folder of ``plan``: resumed when allowed and present, else new.

    Raises:
        UsageError: Another live render is writing the same output.
    """
    output = plan.output
    existing = job_folders(output)
    busy = _busy(existing)
    if busy is not None:
        raise UsageError(
            f"another helios-render is writing {output} (its job folder {busy.name} is in use "
            f"by {describe_owner(busy)}): wait for it, or write another output"
        )
    path = output.parent / f"{job_folder_prefix(output)}{plan.digest[:16]}"
    for folder in existing:
        if folder == path and resume is not False:
            continue
        if folder == path:
            logger.warning("--no-resume: discarding the finished chunks in %s", folder.name)
        else:
            logger.warning(
                "the settings or the composition changed since the interrupted render of %s: "
                "starting over", output.name,
            )
        shutil.rmtree(folder, ignore_errors=True)
    job = JobFolder(path, plan)
    if path.is_dir():
        if plan.resumable or resume:
            job._load()
            if job.records:
                logger.info(
                    "resuming: %d of %d chunks (%d frames) are already rendered",
                    len(job.records), len(plan.jobs), job.reused_frames,
                )
        else:
            logger.warning(
                "an interrupted render of this URL is in %s; its contents may have changed, "
                "so it starts over (pass --resume to reuse the finished chunks)", path.name,
            )
            shutil.rmtree(path, ignore_errors=True)
    job.chunks_dir.mkdir(parents=True, exist_ok=True)
    if job.partial_dir.exists():
        shutil.rmtree(job.partial_dir, ignore_errors=True)
    job.partial_dir.mkdir()
    try:
        claim_dir(path)
    except BlockingIOError as exc:  # another render took it since it was looked at
        raise UsageError(
            f"another helios-render is writing {output} (its job folder {path.name} is in use "
            f"by {describe_owner(path)}): wait for it, or write another output"
        ) from exc
    if not (path / MANIFEST).exists() or not job.records:
        job._write_manifest()
    return job


def describe_kept(error: BaseException | None, output: Path) -> str | None:
    """The line telling how to resume or discard a job folder kept after a failure."""
    folders = job_folders(output)
    if not folders or (error is not None and is_deterministic(error)):
        return None
    folder = folders[0]
    return (
        f"the finished chunks are kept in {folder}: run the same command again to resume, "
        "or add --no-resume to start over (or remove that folder)"
    )

