# DESIGN §4 rule 3: a paired volunteer is asked before a stranger who is nearer by less than
# the familiarity margin (60 s by default). On foot, S is 100 m away and P 130 m (about 31 s
# further by the 1.3 detour at 4.5 km/h).
> config {"wave_sizes": [1], "acceptance_target": 0.0}
> volunteer P 0 130
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
  +0.000 offer_sent {"distance_m":169,"eta_s":135,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"P: paired volunteer, ETA 135 s on foot; S was nearer at 104 s but not familiar (margin 60 s)","responder_id":"P","route":"2 points","wave":1}
