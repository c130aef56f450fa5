"""The DNS resolver Scrapy connects with, refusing non-public addresses.

``PrivateAddressMiddleware`` vets each URL, but Scrapy then resolves the name again itself; a
name that answers a public address to the check and a private one to the connection (DNS
rebinding) would slip through. Vetting the address the connection will use closes that gap,
as ``pipeline.net.client`` does by pinning the vetted address.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from pipeline.net.guard import PRIVATE_NETWORK_SWITCH, classify_address

log = logging.getLogger(__name__)


class PublicOnlyResolver(CachingThreadedResolver):
    allow_private = False

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> Self:
        resolver = super().from_crawler(crawler, reactor)
        resolver.allow_private = crawler.settings.getbool("NEWSAGG_ALLOW_PRIVATE_NETWORK")
        return resolver

    def getHostByName(self, name: str, timeout: Any = ()) -> Deferred[str]:
        deferred = super().getHostByName(name, timeout)
        if not self.allow_private:
            deferred.addCallback(self._vet, name)
        return deferred

    @staticmethod
    def _vet(address: str, name: str) -> str:
        reason = classify_address(address)
        if reason:
            # Twisted reports any failed lookup as "no results": say here why it failed
            message = f"refused {name}: it resolves to {address}, which is {reason}; {PRIVATE_NETWORK_SWITCH}"
            log.warning(message)
            raise DNSLookupError(message)
        return address
