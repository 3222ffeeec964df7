# A meal request goes to the volunteer with the meal skill; a fall from the same elder is a different need: its own emergency incident (issue 12, defect 1), and the meal stays wanted.
> volunteer C1 900 0 meal
> volunteer V1 100 0
> elder E1 0 0 G1 2
> on_duty C1 V1
= done
  +0.000 responder_availability {"responder_id":"C1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
> help m1 E1 meal
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"m1","elder_id":"E1","incident_id":1,"kind":"help","position":{"lat":-30.03,"lon":-51.2},"priority":1,"reason":"help (meal) from E1 (care level 2): service request, priority 1","service":"meal"}
  +0.000 offer_sent {"distance_m":1170,"eta_s":936,"expires_at":1300000,"incident_id":1,"offer_id":1,"reason":"C1: #1 by road ETA, ETA 936 s on foot","responder_id":"C1","route":"2 points","wave":1}
> fall f1 E1
= alert_accepted {"duplicate":false,"incident_id":2}
  +0.000 incident_opened {"alert_id":"f1","elder_id":"E1","incident_id":2,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":130,"eta_s":104,"expires_at":1030000,"incident_id":2,"offer_id":2,"reason":"V1: #1 by road ETA, ETA 104 s on foot","responder_id":"V1","route":"2 points","wave":1}
