# Care level 2: no ambulance at once. Nobody accepts: the 30-s first-accept promise is
# breached, and at 60 s the nearest ambulance by car is assigned.
> volunteer V1 100 0
> ambulance A1 2000 0
> ambulance A2 4000 0
> elder E1 0 0 G1 2
> on_duty V1 A1 A2
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"A1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"A2","status":"available"}
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":130,"eta_s":104,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"V1: #1 by road ETA, ETA 104 s on foot","responder_id":"V1","route":"2 points","wave":1}
> wait 59999ms
  +30.000 offer_expired {"incident_id":1,"offer_id":1,"responder_id":"V1"}
  +30.000 sla_breached {"deadline":1030000,"incident_id":1,"sla":"first_accept"}
  +30.000 no_responder_available {"incident_id":1,"reason":"nobody eligible and reachable within 20 min by road (the care level 2 search) is available; trying again every 15 s and whenever a responder becomes available"}
> wait 1ms
  +60.000 escalated {"incident_id":1,"reason":"ambulance dispatched: no community responder accepted within 60 s"}
  +60.000 assigned {"eta_s":260,"incident_id":1,"reason":"no community responder accepted within 60 s: A1 is the nearest available ambulance, ETA 260 s by car","responder_id":"A1","role":"ambulance","route":"2 points"}
  +60.000 escalated {"incident_id":1,"reason":"nobody new is available: asking again those who let the offer expire (V1)"}
  +60.000 escalated {"incident_id":1,"reason":"wave 2: asking 1 more (the previous wave declined or expired)"}
  +60.000 offer_sent {"distance_m":130,"eta_s":104,"expires_at":1090000,"incident_id":1,"offer_id":2,"reason":"V1: #1 by road ETA, ETA 104 s on foot","responder_id":"V1","route":"2 points","wave":2}
