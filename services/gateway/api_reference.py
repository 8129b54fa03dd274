"""The directory, readable by apps and handsets: each endpoint answers a JSON list of objects.

Any authenticated caller may read them (source systems, staff, citizens): they are the public
places and offices of the county. People's phones are never in them.
"""
from __future__ import annotations

from services.common.web import api


class ReferenceApi:
    @api("GET", "/api/v1/reference/townships")
    def townships(self, request):
        """[{code, name, kind, aliases, centre, guided_by (the county room, 连锁), lat, lon}]"""
        self._authenticate(request)
        return self._call("routing", "townships")

    @api("GET", "/api/v1/reference/villages")
    def villages(self, request):
        """?township=<code, name or alias> -> [{code, name, kind, township, work_area}]"""
        self._authenticate(request)
        return self._call("routing", "villages", township=request.args.get("township"))

    @api("GET", "/api/v1/reference/grids")
    def grids(self, request):
        """?township=…&village=… -> [{code, name, village, village_name, township, grid_worker, grid_worker_name}]"""
        self._authenticate(request)
        return self._call("routing", "grids", township=request.args.get("township"),
                          village=request.args.get("village"))

    @api("GET", "/api/v1/reference/centres")
    def centres(self, request):
        """[{code, name, level, township, phone, rooms}]: the county centre (with its rooms) and each township's."""
        self._authenticate(request)
        return self._call("routing", "centres")

    @api("GET", "/api/v1/reference/units")
    def units(self, request):
        """[{code, name, kind, dispute_types (归口), co_handles (联动), gov_categories, phone}]"""
        self._authenticate(request)
        return self._call("routing", "units")
