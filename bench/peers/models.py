from simple_history import register

from directory.models import User

register(User, app="bench.peers", manager_name="bench_history", table_name="bench_historical_user")
