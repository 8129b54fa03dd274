from services.common.migrate import run_env
from services.psych.models import Base

run_env(Base.metadata)
