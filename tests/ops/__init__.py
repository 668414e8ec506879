"""Operations (spec §6, §11; issue 15): local servers, logs, static files, production."""
