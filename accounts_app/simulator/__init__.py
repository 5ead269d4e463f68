"""A local simulator of Alibaba Cloud's R-KVStore API, for tests and demos.

It stands in for a foreign server: nothing here imports the dashboard's code (its rules
module or ``accounts_app.alibaba``), so a mistake in the dashboard cannot hide behind the
same mistake in the simulator. ``server`` says how its parts fit; ``control`` lists
the control API.
"""
