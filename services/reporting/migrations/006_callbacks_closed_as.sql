-- How a callback ticket ended (`callback.closed`: `closed_as`): "withdrawn" when the outcome was corrected
-- away from "callback" (nobody was to call back), "done" when staff closed it with the call's result.
-- A withdrawn ticket counts neither as created nor as closed in time (DA 2.3). Tickets closed before the
-- field was sent keep NULL and count as before.
ALTER TABLE callbacks ADD COLUMN closed_as text;
