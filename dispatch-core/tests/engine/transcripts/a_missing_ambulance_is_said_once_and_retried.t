# A care-level-5 fall with no ambulance on duty: the wait is said once, the engine retries
# every 15 s quietly, and the ambulance that comes on duty is assigned at the next try.
> ambulance A1 500 0
> elder E1 0 0 G1 5
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":5,"reason":"fall from E1 (care level 5): emergency, priority 5","service":null}
  +0.000 escalated {"incident_id":1,"reason":"ambulance needed (care level 5) but none is available; trying again every 15 s"}
  +0.000 no_responder_available {"incident_id":1,"reason":"nobody eligible and reachable is available; trying again every 15 s and whenever a responder becomes available"}
> wait 60001ms
  +20.000 sla_breached {"deadline":1020000,"incident_id":1,"sla":"first_accept"}
  +20.000 escalated {"incident_id":1,"reason":"nobody accepted within the first-accept SLA: widening to the next wave now"}
> on_duty A1
= done
  +60.001 responder_availability {"responder_id":"A1","status":"available"}
> wait 15s
  +75.000 escalated {"incident_id":1,"reason":"ambulance dispatched: care level 5"}
  +75.000 assigned {"eta_s":65,"incident_id":1,"reason":"care level 5: A1 is the nearest available ambulance, ETA 65 s by car","responder_id":"A1","role":"ambulance","route":"2 points"}
  +75.000 no_responder_available {"incident_id":1,"reason":"nobody eligible and reachable is available; trying again every 15 s and whenever a responder becomes available"}
