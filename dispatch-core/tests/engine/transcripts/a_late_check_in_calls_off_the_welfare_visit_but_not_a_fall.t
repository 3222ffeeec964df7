# A late check-in answers the missed one: the welfare visit is called off and its offer
# withdrawn. A fall is never closed by a check-in.
> grid_worker W1 foot 200 0 G1
> volunteer V1 100 0
> elder E1 0 0 G1 2
> on_duty W1 V1
= done
  +0.000 responder_availability {"responder_id":"W1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
> check_in_missed m1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"m1","elder_id":"E1","incident_id":1,"kind":"check_in_missed","position":{"lat":-30.03,"lon":-51.2},"priority":2,"reason":"missed check-in from E1 (care level 2): welfare visit, own grid worker first, priority 2","service":null}
  +0.000 offer_sent {"distance_m":260,"eta_s":208,"expires_at":1300000,"incident_id":1,"offer_id":1,"reason":"W1: own grid worker, ETA 208 s on foot","responder_id":"W1","route":"2 points","wave":1}
> check_in E1
= done
  +0.000 checked_in {"elder_id":"E1"}
  +0.000 offer_withdrawn {"incident_id":1,"offer_id":1,"reason":"incident_closed","responder_id":"W1"}
  +0.000 incident_cancelled {"by":{"id":"GW1","role":"device"},"incident_id":1,"reason":"E1 checked in: the welfare visit is not needed"}
> fall f1 E1
= alert_accepted {"duplicate":false,"incident_id":2}
  +0.000 incident_opened {"alert_id":"f1","elder_id":"E1","incident_id":2,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":130,"eta_s":104,"expires_at":1030000,"incident_id":2,"offer_id":2,"reason":"V1: #1 by road ETA, ETA 104 s on foot","responder_id":"V1","route":"2 points","wave":1}
  +0.000 offer_sent {"distance_m":260,"eta_s":208,"expires_at":1030000,"incident_id":2,"offer_id":3,"reason":"W1: own grid worker, ETA 208 s on foot; V1 was nearer at 104 s but not familiar (margin 60 s)","responder_id":"W1","route":"2 points","wave":1}
> check_in E1
= done
  +0.000 checked_in {"elder_id":"E1"}
