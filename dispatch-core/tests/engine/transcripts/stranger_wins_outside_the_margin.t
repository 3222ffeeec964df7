# The margin is a bound: when the paired volunteer is more than 60 s further than a stranger,
# the stranger is asked first. S is 100 m away, P 200 m (about 104 s further).
> config {"wave_sizes": [1], "acceptance_target": 0.0}
> volunteer P 0 200
> volunteer S 100 0
> elder E1 0 0 G1 2 P
> on_duty P S
= done
  +0.000 responder_availability {"responder_id":"P","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"S","status":"available"}
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":130,"eta_s":104,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"S: #1 by road ETA, ETA 104 s on foot","responder_id":"S","route":"2 points","wave":1}
