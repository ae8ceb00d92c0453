"""Compliance writes and rules (LGPD, Anatel). Import from here: ``compliance.services.<name>``.

Split by subject: ``dsr`` (data-subject requests), ``consent``, ``access_log``, ``export``,
``erasure``, ``retention``, ``records`` (Art. 37 record, Anatel service records),
``incidents``, ``deadlines`` (calendar and business days, national holidays, SAC deadlines).
"""

from compliance.services.access_log import (
    access_log_mark_seen,
    access_log_purge_before,
    access_log_record,
    access_log_record_once,
    access_log_verify,
)
from compliance.services.consent import (
    consent_grant,
    consent_revoke,
    consent_revoke_by_keyword,
    consent_state,
    marketing_allowed,
)
from compliance.services.deadlines import (
    business_deadline,
    dsr_due_at,
    holiday_name,
    incident_notice_due_at,
    national_holidays,
    sac_deadline,
)
from compliance.services.dsr import (
    RequestError,
    dsr_answer,
    dsr_answers_awaiting,
    dsr_customers_with_answers_awaiting,
    dsr_deadline_alerts,
    dsr_deliver,
    dsr_deliver_awaiting,
    dsr_detect_and_open,
    dsr_detect_kind,
    dsr_intake_reply,
    dsr_open,
    dsr_set_status,
    dsr_verify_identity,
)
from compliance.services.erasure import (
    active_holds,
    erasure_run,
    erasure_start,
    held_customer_ids,
    legal_hold_release,
)
from compliance.services.export import (
    export_build,
    export_create,
    export_expire,
    export_open_for_download,
    export_payload,
)
from compliance.services.incidents import incident_notice_draft, incident_register
from compliance.services.records import (
    processing_record,
    processing_record_csv,
    processing_record_html,
    processing_record_json,
    protocol_moment,
    service_record_for_protocol,
    service_record_hold,
    service_record_text,
)
from compliance.services.retention import batched_delete, retention_apply

__all__ = [
    "RequestError",
    "access_log_mark_seen",
    "access_log_purge_before",
    "access_log_record",
    "access_log_record_once",
    "access_log_verify",
    "active_holds",
    "batched_delete",
    "business_deadline",
    "consent_grant",
    "consent_revoke",
    "consent_revoke_by_keyword",
    "consent_state",
    "dsr_answer",
    "dsr_answers_awaiting",
    "dsr_customers_with_answers_awaiting",
    "dsr_deadline_alerts",
    "dsr_deliver",
    "dsr_deliver_awaiting",
    "dsr_detect_and_open",
    "dsr_detect_kind",
    "dsr_due_at",
    "dsr_intake_reply",
    "dsr_open",
    "dsr_set_status",
    "dsr_verify_identity",
    "erasure_run",
    "erasure_start",
    "export_build",
    "export_create",
    "export_expire",
    "export_open_for_download",
    "export_payload",
    "held_customer_ids",
    "holiday_name",
    "incident_notice_draft",
    "incident_notice_due_at",
    "incident_register",
    "legal_hold_release",
    "marketing_allowed",
    "national_holidays",
    "processing_record",
    "processing_record_csv",
    "processing_record_html",
    "processing_record_json",
    "protocol_moment",
    "retention_apply",
    "sac_deadline",
    "service_record_for_protocol",
    "service_record_hold",
    "service_record_text",
]
