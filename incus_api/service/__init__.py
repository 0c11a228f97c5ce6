"""Use cases: each composes the adapters (Incus, the kernel's tables, the host) and the store.

Nothing here knows about HTTP; the ``api`` and ``dashboard`` blueprints call the same functions.

Locks, in the one order they may be taken (a later one inside an earlier one, never the reverse):

1. a container's lifecycle mark (``Lifecycle``: one suspend, unsuspend or reinstall at a time;
   a second one is refused at once, it never waits);
2. a kernel table's lock, one at a time: the NAT table's (``NatRuleService.lock``: every change of
   the forwards' rows and kernel rules, and the sync) or the traffic counters'
   (``traffic.Sampler``'s pass lock: a sampling pass, a counter mapped or unmapped);
3. a SQLite write transaction (``store.db.Database.transaction``), the innermost: nothing inside
   it calls Incus, writes to the kernel or takes a lock.

Incus is called with none of these held but the first; a delete takes the NAT lock only to take
its kernel rules out and, once Incus is done, to delete its rows. The traffic history's fold
(``traffic.history``, a scheduler job, so never beside a sampling pass) takes only 3, one container
at a time: the sampler adds to the current hour only, never to the old hours it folds.
"""
