"""Reports: scorecards per unit, township and mediator; hot topics (兰陵热点); JSON or CSV."""
from __future__ import annotations

from werkzeug.wrappers import Response

from services.common.web import api
from services.contracts.errors import Invalid
from services.gateway.api_cases import actor_of


def _csv(text: str, filename: str) -> Response:
    # UTF-8 with a BOM, so Excel opens the Chinese headers correctly
    return Response(("\ufeff" + text).encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class ReportsApi:
    @api("GET", "/api/v1/reports/scorecard")
    def scorecard(self, request):
        actor = actor_of(self._authenticate(request))
        by = request.args.get("by", "unit")
        start, end = request.args.get("from"), request.args.get("to")
        if not start or not end:
            raise Invalid("from and to are required (ISO 8601 dates)",
                          {name: ["required"] for name in ("from", "to") if not request.args.get(name)})
        card = self._call("mediation", "scorecard", by, start, end, actor)
        if by == "township":
            names = self._township_names()
            for row in card["rows"]:
                row["label"] = names.get(row["group"], row["label"])
            for code, name in names.items():
                card["csv"] = card["csv"].replace(f"\r\n{code},", f"\r\n{name},")
        if request.args.get("format") == "csv":
            return _csv(card["csv"], f"scorecard-{by}.csv")
        card.pop("csv")
        return card

    @api("GET", "/api/v1/reports/hot-topics")
    def hot_topics(self, request):
        actor_of(self._authenticate(request))
        try:
            days = int(request.args.get("days", "30"))
            top = int(request.args.get("top", "10"))
        except ValueError:
            raise Invalid("days and top must be whole numbers", {"days": ["1..366"]}) from None
        topics = self._call("mediation", "hot_topics", days, top)
        names = self._township_names()
        for item in topics["places"]:
            item["name"] = names.get(item["name"], item["name"])
        for item in topics["pairs"]:
            place, _, kind = item["name"].partition(" · ")
            item["name"] = f"{names.get(place, place)} · {kind}"
        for code, name in names.items():
            topics["csv"] = topics["csv"].replace(f",{code},", f",{name},").replace(f",{code} · ", f",{name} · ")
        if request.args.get("format") == "csv":
            return _csv(topics["csv"], f"hot-topics-{days}d.csv")
        topics.pop("csv")
        return topics
