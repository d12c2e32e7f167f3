"""The audit log, for admins: who viewed which person and who decided what, when."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from joinedup.steward import audit
from joinedup.steward.users import CurrentUser
from joinedup.steward.web.render import render
from joinedup.steward.web.security import csrf_protect, current_user, db, require_admin

router = APIRouter(dependencies=[Depends(current_user), Depends(csrf_protect)])


@router.get("/audit")
def audit_page(request: Request, username: str = "", action: str = "", master_id: str = "",
               user: CurrentUser = Depends(require_admin), session: Session = Depends(db)) -> Response:
    entries = audit.recent(session, limit=300, username=username or None, action=action or None,
                           master_id=master_id or None)
    audit.record(session, user.username, "view_audit", detail={"entries": len(entries)})
    session.commit()
    return render(request, "audit.html", title="Audit log", entries=entries, username=username, action=action,
                  master_id=master_id, actions=audit.ACTIONS)
