# An ambulance requested by the volunteer on scene is assigned at once (the nearest), and a
# fall of a care-level-4 elder gets an ambulance at once (the one left).
> volunteer V1 100 0
> ambulance A1 2000 0
> ambulance A2 2500 0
> elder E4 0 0 G1 4
> elder E2 0 300 G1 2
> on_duty V1 A1 A2
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"A1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"A2","status":"available"}
> fall a2 E2
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a2","elder_id":"E2","incident_id":1,"kind":"fall","position":{"lat":-30.027302,"lon":-51.2},"priority":4,"reason":"fall from E2 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":411,"eta_s":329,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"V1: #1 by road ETA, ETA 329 s on foot","responder_id":"V1","route":"2 points","wave":1}
> accept V1 O1
= done
  +0.000 assigned {"eta_s":329,"incident_id":1,"reason":"V1 accepted offer O1 (wave 1) and is on the way, ETA 329 s","responder_id":"V1","role":"community","route":"2 points"}
> arrived V1 I1
= done
  +0.000 responder_arrived {"incident_id":1,"responder_id":"V1","role":"community"}
> request_ambulance V1 I1
= done
  +0.000 escalated {"incident_id":1,"reason":"ambulance dispatched: requested by V1 on scene"}
  +0.000 assigned {"eta_s":263,"incident_id":1,"reason":"requested by V1 on scene: A1 is the nearest available ambulance, ETA 263 s by car","responder_id":"A1","role":"ambulance","route":"2 points"}
> fall a1 E4
= alert_accepted {"duplicate":false,"incident_id":2}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E4","incident_id":2,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":5,"reason":"fall from E4 (care level 4): emergency, priority 5","service":null}
  +0.000 escalated {"incident_id":2,"reason":"ambulance dispatched: care level 4"}
  +0.000 assigned {"eta_s":325,"incident_id":2,"reason":"care level 4: A2 is the nearest available ambulance, ETA 325 s by car","responder_id":"A2","role":"ambulance","route":"2 points"}
  +0.000 no_responder_available {"incident_id":2,"reason":"nobody eligible and reachable is available; trying again every 15 s and whenever a responder becomes available"}
