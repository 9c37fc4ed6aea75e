"""Instance options of the haops cube, set in the instance's all-in-one.conf."""

options = (
    (
        "haops-pool-warning",
        {
            "type": "float",
            "default": 80.0,
            "help": (
                "monitor_pool reports WARNING when more than this share of the "
                "database connection pool is in use, in percent (0 to 100). "
                "Nagios may override it per request with ?warning=."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-pool-critical",
        {
            "type": "float",
            "default": 95.0,
            "help": (
                "monitor_pool reports KO when more than this share of the "
                "database connection pool is in use, in percent (0 to 100, at "
                "least haops-pool-warning). Nagios may override it per request "
                "with ?critical=."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-db-timeout",
        {
            "type": "time",
            "default": 3,
            "help": (
                "Time allowed to monitor_db, monitor_version and "
                "monitor_replication to connect to "
                "the database and run their query, in seconds (units such as "
                "500ms or 2s are accepted). Past it they report the database "
                "as not answering."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-replace-images-on-edit",
        {
            "type": "yn",
            "default": True,
            "help": (
                "When an edit form uploads new data for an image (a File "
                "whose format starts with image/), store it in a new File "
                "with a new eid and URL, move the relations of the old File "
                "onto it and delete the old one, so caches never serve the "
                "old bytes. Old URLs redirect to the new File. With no, the "
                "image is updated in place."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-image-max-age",
        {
            "type": "int",
            "default": 3600,
            "help": (
                "How long Squid and browsers may keep an image served at a URL "
                "without its content fingerprint, in seconds. Images served at "
                "their current fingerprinted URL may be kept for a year."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-replication-standbys",
        {
            "type": "int",
            "default": 0,
            "help": (
                "Number of PostgreSQL standbys expected to stream from the "
                "primary database. monitor_replication reports KO when fewer "
                "are connected."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-replication-lag-warning",
        {
            "type": "time",
            "default": 60,
            "help": (
                "monitor_replication reports WARNING when a standby's replay "
                "lag is above this time, in seconds (units such as 2min are "
                "accepted)."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-replication-lag-critical",
        {
            "type": "time",
            "default": 300,
            "help": (
                "monitor_replication reports KO when a standby's replay lag is "
                "above this time, in seconds (at least "
                "haops-replication-lag-warning)."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-monitor-allow",
        {
            "type": "csv",
            "default": "127.0.0.0/8,::1",
            "help": (
                "Networks (addresses or CIDR, IPv4 and IPv6, separated by commas) "
                "whose clients may read the monitoring URLs. Any other client "
                "gets 403 and learns nothing."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
    (
        "haops-trusted-proxies",
        {
            "type": "csv",
            "default": "127.0.0.0/8,::1",
            "help": (
                "Networks of the proxies (Squid, Apache) whose X-Forwarded-For "
                "header is believed when the monitoring URLs decide who the "
                "client is."
            ),
            "group": "haops",
            "level": 2,
        },
    ),
)
