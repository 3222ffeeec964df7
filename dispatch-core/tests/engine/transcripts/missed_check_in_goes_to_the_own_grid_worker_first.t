# A missed check-in is a welfare visit: the elder's own grid worker alone in wave 1, though a
# grid worker of another grid and a volunteer are nearer; after a decline, everyone eligible.
> grid_worker W1 foot 900 0 G1
> grid_worker W2 foot 50 0 G2
> volunteer V1 60 0
> elder E1 0 0 G1 2
> on_duty W1 W2 V1
= done
  +0.000 responder_availability {"responder_id":"W1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"W2","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
> check_in_missed m1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"m1","elder_id":"E1","incident_id":1,"kind":"check_in_missed","position":{"lat":-30.03,"lon":-51.2},"priority":2,"reason":"missed check-in from E1 (care level 2): welfare visit, own grid worker first, priority 2","service":null}
  +0.000 offer_sent {"distance_m":1170,"eta_s":936,"expires_at":1300000,"incident_id":1,"offer_id":1,"reason":"W1: own grid worker, ETA 936 s on foot","responder_id":"W1","route":"2 points","wave":1}
> decline W1 O1
= done
  +0.000 offer_declined {"incident_id":1,"offer_id":1,"responder_id":"W1"}
  +0.000 escalated {"incident_id":1,"reason":"wave 2: asking 2 more (the previous wave declined or expired)"}
  +0.000 offer_sent {"distance_m":65,"eta_s":52,"expires_at":1300000,"incident_id":1,"offer_id":2,"reason":"W2: #1 by road ETA, ETA 52 s on foot","responder_id":"W2","route":"2 points","wave":2}
  +0.000 offer_sent {"distance_m":78,"eta_s":62,"expires_at":1300000,"incident_id":1,"offer_id":3,"reason":"V1: #2 by road ETA, ETA 62 s on foot","responder_id":"V1","route":"2 points","wave":2}
