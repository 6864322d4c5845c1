//! payerr's mock payment provider (`payerr simulate`): one dialect's envelopes, codes and faults over HTTP.
