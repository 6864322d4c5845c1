//! payerr's gateway (`payerr gateway`): a reverse proxy in front of payment providers that decides retries, failover and polling from verdicts.
