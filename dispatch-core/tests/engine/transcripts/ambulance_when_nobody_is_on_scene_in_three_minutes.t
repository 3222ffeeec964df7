# V1 accepts in 10 s, so there is no first-accept breach and no ambulance at 60 s; but V1 is not
# at the door at 180 s: the community-on-scene promise is breached and an ambulance goes. Both
# arrive; the incident resolves when the last one completes.
> volunteer V1 150 0
> ambulance A1 2000 0
> elder E1 0 0 G1 2
> on_duty V1 A1
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"A1","status":"available"}
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":195,"eta_s":156,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"V1: #1 by road ETA, ETA 156 s on foot","responder_id":"V1","route":"2 points","wave":1}
> wait 10s
> accept V1 O1
= done
  +10.000 assigned {"eta_s":156,"incident_id":1,"reason":"V1 accepted offer O1 (wave 1) and is on the way, ETA 156 s","responder_id":"V1","role":"community","route":"2 points"}
> wait 169999ms
> wait 1ms
  +180.000 sla_breached {"deadline":1180000,"incident_id":1,"sla":"community_on_scene"}
  +180.000 escalated {"incident_id":1,"reason":"ambulance dispatched: no community responder on scene within 180 s"}
  +180.000 assigned {"eta_s":260,"incident_id":1,"reason":"no community responder on scene within 180 s: A1 is the nearest available ambulance, ETA 260 s by car","responder_id":"A1","role":"ambulance","route":"2 points"}
> arrived V1 I1
= done
  +180.000 responder_arrived {"incident_id":1,"responder_id":"V1","role":"community"}
> arrived A1 I1
= done
  +180.000 responder_arrived {"incident_id":1,"responder_id":"A1","role":"ambulance"}
> complete V1 I1
= done
  +180.000 time_bank_credited {"incident_id":1,"minutes":0,"responder_id":"V1"}
> complete A1 I1
= done
  +180.000 incident_resolved {"by":{"id":"A1","role":"responder"},"incident_id":1,"reason":"completed by A1"}
