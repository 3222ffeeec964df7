# V1 stands between two elders, V2 near E1 only. Alone, E1's fall asks both; when E2 falls a
# second later, V1's offer for E1 is withdrawn (reassigned) and V1 is asked for E2: the joint
# assignment with the smaller total ETA.
> volunteer V1 600 0
> volunteer V2 -150 0
> elder E1 0 0 G1 2
> elder E2 1200 0 G1 2
> on_duty V1 V2
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V2","status":"available"}
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":195,"eta_s":156,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"V2: #1 by road ETA, ETA 156 s on foot","responder_id":"V2","route":"2 points","wave":1}
  +0.000 offer_sent {"distance_m":780,"eta_s":624,"expires_at":1030000,"incident_id":1,"offer_id":2,"reason":"V1: #2 by road ETA, ETA 624 s on foot","responder_id":"V1","route":"2 points","wave":1}
> wait 1s
> fall a2 E2
= alert_accepted {"duplicate":false,"incident_id":2}
  +1.000 incident_opened {"alert_id":"a2","elder_id":"E2","incident_id":2,"kind":"fall","position":{"lat":-30.03,"lon":-51.187535},"priority":4,"reason":"fall from E2 (care level 2): emergency, priority 4","service":null}
  +1.000 offer_withdrawn {"incident_id":1,"offer_id":2,"reason":"reassigned","responder_id":"V1"}
  +1.000 offer_sent {"distance_m":780,"eta_s":624,"expires_at":1031000,"incident_id":2,"offer_id":3,"reason":"V1: #1 by road ETA, ETA 624 s on foot; surge of 2 waiting emergencies: joint assignment gives V1 here (total weighted score 3600 s over 2 incidents)","responder_id":"V1","route":"2 points","wave":1}
