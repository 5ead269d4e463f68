"""The simulator's demo estate, by what each instance is for in a test
(accounts_app/simulator/demo_estate.py describes them)."""

HEALTHY = "r-bp1ord5x0c9kq2m7wa"  # 5.0 standard, healthy: the everyday case
CLUSTER_60 = "r-bp1ses6c1u8vh3n5tz"  # 6.0 cluster, healthy
RWSPLIT_70 = "r-bp1cat7r2w6jd4p8ye"  # 7.0 read/write splitting, healthy
REPL_OK = "r-bp1leg4s3f5kx7b1qa"  # 4.0 standard: the one that allows RoleRepl
OLD_ENGINE = "r-bp1old2e4g8mz6c3hr"  # 2.8: InvalidEngineVersion.Format
CHANGING = "r-bp1inv5h5q9ta2d7ks"  # 5.0, status Changing: IncorrectDBInstanceState
FULL = "r-uf6pay6s6w3rc8e1vn"  # 6.0 standard, already 18 accounts
PASSWORD_FREE = "r-uf6flg7s7y2nf5k9pb"  # 7.0 standard, VpcAuthMode Close: password-free access on
TAIR = "r-uf6ana6c8j4xl1t6wd"  # 6.0 cluster, Tair enterprise edition
CLUSTER_40 = "r-uf6rep4c9d7vg3s2me"  # 4.0 cluster: no RoleRepl
