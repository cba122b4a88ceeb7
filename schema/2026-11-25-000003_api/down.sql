DROP TABLE access_log;
DROP FUNCTION access_log_refuse_change();
DROP TABLE api_tokens;
