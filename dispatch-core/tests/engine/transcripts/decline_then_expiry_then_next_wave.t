# Wave 1 asks the three nearest; one declines after 5 s, which does not end the wave while
# the other two offers are open. They expire at 30 s, and wave 2 asks the three others, never
# again the first three. An expired offer can no longer be accepted.
> volunteer V0 50 0
> volunteer V1 90 0
> volunteer V2 130 0
> volunteer V3 170 0
> volunteer V4 210 0
> volunteer V5 250 0
> elder E1 0 0 G1 2
> on_duty V0 V1 V2 V3 V4 V5
= done
  +0.000 responder_availability {"responder_id":"V0","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V1","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V2","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V3","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V4","status":"available"}
= done
  +0.000 responder_availability {"responder_id":"V5","status":"available"}
> fall a1 E1
= alert_accepted {"duplicate":false,"incident_id":1}
  +0.000 incident_opened {"alert_id":"a1","elder_id":"E1","incident_id":1,"kind":"fall","position":{"lat":-30.03,"lon":-51.2},"priority":4,"reason":"fall from E1 (care level 2): emergency, priority 4","service":null}
  +0.000 offer_sent {"distance_m":65,"eta_s":52,"expires_at":1030000,"incident_id":1,"offer_id":1,"reason":"V0: #1 by road ETA, ETA 52 s on foot","responder_id":"V0","route":"2 points","wave":1}
  +0.000 offer_sent {"distance_m":117,"eta_s":94,"expires_at":1030000,"incident_id":1,"offer_id":2,"reason":"V1: #2 by road ETA, ETA 94 s on foot","responder_id":"V1","route":"2 points","wave":1}
  +0.000 offer_sent {"distance_m":169,"eta_s":135,"expires_at":1030000,"incident_id":1,"offer_id":3,"reason":"V2: #3 by road ETA, ETA 135 s on foot","responder_id":"V2","route":"2 points","wave":1}
> wait 5s
> decline V0 O1
= done
  +5.000 offer_declined {"incident_id":1,"offer_id":1,"responder_id":"V0"}
> wait 25s
  +30.000 offer_expired {"incident_id":1,"offer_id":2,"responder_id":"V1"}
  +30.000 offer_expired {"incident_id":1,"offer_id":3,"responder_id":"V2"}
  +30.000 sla_breached {"deadline":1030000,"incident_id":1,"sla":"first_accept"}
  +30.000 escalated {"incident_id":1,"reason":"wave 2: asking 3 more (the previous wave declined or expired)"}
  +30.000 offer_sent {"distance_m":221,"eta_s":177,"expires_at":1060000,"incident_id":1,"offer_id":4,"reason":"V3: #1 by road ETA, ETA 177 s on foot","responder_id":"V3","route":"2 points","wave":2}
  +30.000 offer_sent {"distance_m":273,"eta_s":218,"expires_at":1060000,"incident_id":1,"offer_id":5,"reason":"V4: #2 by road ETA, ETA 218 s on foot","responder_id":"V4","route":"2 points","wave":2}
  +30.000 offer_sent {"distance_m":325,"eta_s":260,"expires_at":1060000,"incident_id":1,"offer_id":6,"reason":"V5: #3 by road ETA, ETA 260 s on foot","responder_id":"V5","route":"2 points","wave":2}
> accept V1 O2
! offer O2 is no longer open (accepted, declined, expired or withdrawn)
