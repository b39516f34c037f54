"""Run records without running the pipeline: a small output root with two runs written by the
same code the pipeline writes them with (run record, documents, stances), for the tests of
the commands that only read an output root (`newsflow runs`, `newsflow show`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from tasks.dataset.output import RunContext, write_table
from tasks.dataset.run_record import RunRecord, output_files, write_run_record

RUN_IDS = ("3f2b8c1e-9d4a-4e7b-8c21-6a5f0e9d7b13", "a1c9e5d2-7b3f-4a68-9e0d-2c4b6f8a1e57")
TRICKY_TITLE = "A title\twith a tab\nand a line break"


def write_fake_runs(root: Path) -> list[str]:
    """Two completed runs under `root`, the newer second; returns their ids (newest first)."""
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for n, run_id in enumerate(RUN_IDS):
        context = RunContext(run_id=run_id, started_at=started + timedelta(minutes=n), output_root=str(root), config_sha256="0" * 64)
        documents = pa.table(
            {
                "doc_id": [f"doc-{n}-a", f"doc-{n}-b"],
                "title": [TRICKY_TITLE, f"Second story of run {n}"],
                "summary": ["One summary sentence.", "Another summary."],
                "sentiment": ["negative", "neutral"],
            }
        )
        stances = pa.table(
            {"doc_id": [f"doc-{n}-a"], "target": ["United Nations"], "label": ["favor"], "confidence": [0.9], "evidence": ["The UN was praised."]}
        )
        paths = [write_table(context, "documents", "00000", documents)[0], write_table(context, "stances", "00000", stances)[0]]
        write_run_record(
            context,
            RunRecord(
                run_id=run_id,
                flow_run_name=f"fake-run-{n}",
                status="completed",
                started_at=context.started_at,
                finished_at=context.started_at + timedelta(seconds=2),
                duration_s=2.0,
                config={"input": {"paths": ["inputs"]}, "output": {"root": str(root)}},
                n_read=3,
                n_kept=2,
                n_rejected=1,
                rejected_by_reason={"duplicate": 1},
                stage_seconds={"clean": 0.1, "encode": 0.5},
                outputs=output_files(paths),
            ),
        )
    return list(reversed(RUN_IDS))
