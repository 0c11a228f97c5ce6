"""Use cases: each composes the Incus adapter, the NAT adapter and the database.

Nothing here knows about HTTP; the ``api`` and ``dashboard`` blueprints call the same functions.
"""
from dataclasses import dataclass

from .audit_log import AuditLogService
from .containers import ContainerService
from .images import ImageService
from .nat_rules import NatRuleService


@dataclass
class Services:
    containers: ContainerService
    nat_rules: NatRuleService
    images: ImageService
    audit_log: AuditLogService


def build_services(incus, nat, db, config):
    audit_log = AuditLogService(db=db, config=config)
    nat_rules = NatRuleService(incus=incus, nat=nat, db=db, config=config)
    containers = ContainerService(incus=incus, db=db, nat_rules=nat_rules, config=config)
    images = ImageService(incus=incus, config=config)
    return Services(containers=containers, nat_rules=nat_rules, images=images, audit_log=audit_log)
