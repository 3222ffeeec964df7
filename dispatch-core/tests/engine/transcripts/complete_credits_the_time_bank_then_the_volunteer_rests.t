# Completing a job credits the volunteer's time bank (the minutes from acceptance to completion,
# rounded) and starts their rest: a new fall nearby is not offered to them.
> volunteer V1 100 0
> elder E1 0 0 G1 2
> elder E2 0 50 G2 2
> on_duty V1
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":130,"eta_s":104,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"V1: #1 by road ETA, ETA 104 s on foot","responder_id":"V1","route":"2 points","wave":1}
> accept V1 O1
= done
  +0.000 assigned {"eta_s":104,"incident_id":1,"reason":"V1 accepted offer O1 (wave 1) and is on the way, ETA 104 s","responder_id":"V1","role":"community","route":"2 points"}
> wait 100s
> arrived V1 I1
= done
  +100.000 responder_arrived {"incident_id":1,"responder_id":"V1","role":"community"}
> wait 1205s
> complete V1 I1
= done
  +1305.000 time_bank_credited {"incident_id":1,"minutes":21,"responder_id":"V1"}
  +1305.000 incident_resolved {"by":{"id":"V1","role":"responder"},"incident_id":1,"reason":"completed by V1"}
> move V1 100 0
= done
  +1305.000 responder_moved {"position":{"lat":-30.03,"lon":-51.198961},"responder_id":"V1"}
> fall a2 E2
= alert_accepted {"duplicate":false,"incident_id":2}
  +1305.000 incident_opened {"alert_id":"a2","elder_id":"E2","incident_id":2,"kind":"fall","position":{"lat":-30.02955,"lon":-51.2},"priority":4,"reason":"fall from E2 (care level 2): emergency, priority 4","service":null}
  +1305.000 no_responder_available {"incident_id":2,"reason":"nobody eligible and reachable within 20 min by road (the care level 2 search) is available; trying again every 15 s and whenever a responder becomes available"}
