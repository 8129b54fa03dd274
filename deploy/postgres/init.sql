-- One database per service (DESIGN §2: none reads another's tables).
CREATE DATABASE lanling_intake;
CREATE DATABASE lanling_routing;
CREATE DATABASE lanling_mediation;
CREATE DATABASE lanling_psych;
CREATE DATABASE lanling_notify;
CREATE DATABASE lanling_gateway;
