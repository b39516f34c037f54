"""What every part of ingest shares: the stage's name, `Item` (what a reader yields: a
document or a rejection) and `_reject`, which makes a rejection of this stage, so that
listing, decoding, field mapping and the readers all report bad input the same way."""

from __future__ import annotations

from tasks.records import RawDocument, Rejection, RejectReason

STAGE = "ingest"

Item = RawDocument | Rejection


def _reject(origin: str, reason: RejectReason, detail: str) -> Rejection:
    return Rejection(origin=origin, reason=reason, detail=detail, stage=STAGE)
